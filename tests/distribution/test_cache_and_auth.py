"""Someone who can write to the cache folder, Docker config credentials, and the reference grammar."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.distribution import pull, push
from registry.distribution.oci import Ref, TransportError, credentials_for
from registry.errors import InputError, UsageError
from tests.distribution.conftest import OciServer, Proxy, respond, tree
from tests.factories import Signed


@pytest.fixture
def published(oci: OciServer, signed: Signed) -> dict[str, Any]:
    res = push("dists_vgg16", f"oci://{oci.host}/tiny/dists", registry=signed.reg, trust=signed.policy, plain_http=True)
    row = signed.row(signed.doc())
    return {f["path"]: f for f in row["files"] if f["role"] != "signature"} | {"_digest": res.digest}


def blobs(cache: Path) -> Path:
    return cache / "oci" / "blobs" / "sha256"


def test_planted_cache_blob_with_the_right_name(oci: OciServer, signed: Signed, published: dict[str, Any],
                                                _isolated_cache: Path, tmp_path: Path) -> None:
    onnx = published["dists_vgg16.onnx"]
    folder = blobs(_isolated_cache)
    folder.mkdir(parents=True)
    (folder / onnx["sha256"]).write_bytes(b"\0" * onnx["size"])  # right name, right size, wrong bytes
    res = pull(oci.ref(), registry=tmp_path / "dest", trust=signed.policy, plain_http=True)
    assert res.from_cache == 0
    assert (tmp_path / "dest" / "dists_vgg16.onnx").read_bytes() == (signed.root / "dists_vgg16.onnx").read_bytes()
    assert (folder / onnx["sha256"]).read_bytes() == (signed.root / "dists_vgg16.onnx").read_bytes()


@pytest.mark.parametrize("where", ["blob", "part"])
def test_symlink_in_the_cache_is_never_followed(oci: OciServer, signed: Signed, published: dict[str, Any],
                                               _isolated_cache: Path, tmp_path: Path, where: str) -> None:
    onnx = published["dists_vgg16.onnx"]
    folder = blobs(_isolated_cache)
    folder.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_bytes(b"the user's file")
    os.symlink(victim, folder / (onnx["sha256"] + (".part" if where == "part" else "")))
    pull(oci.ref(), registry=tmp_path / "dest", trust=signed.policy, plain_http=True)
    assert victim.read_bytes() == b"the user's file"
    assert not (folder / onnx["sha256"]).is_symlink()


def test_symlinked_cache_folder_is_refused(oci: OciServer, signed: Signed, published: dict[str, Any],
                                           _isolated_cache: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (_isolated_cache / "oci" / "blobs").mkdir(parents=True)
    os.symlink(elsewhere, blobs(_isolated_cache))
    with pytest.raises(InputError, match="symlink"):
        pull(oci.ref(), registry=tmp_path / "dest", trust=signed.policy, plain_http=True)
    assert tree(tmp_path / "dest") is None and not any(elsewhere.iterdir())


def test_planted_part_file_is_discarded(oci: OciServer, signed: Signed, published: dict[str, Any],
                                        _isolated_cache: Path, tmp_path: Path) -> None:
    calib = published["dists_vgg16.int8.calib.npy"]
    folder = blobs(_isolated_cache)
    folder.mkdir(parents=True)
    (folder / (calib["sha256"] + ".part")).write_bytes(b"\xff" * 1000)  # a wrong beginning to "resume" from
    pull(oci.ref(), registry=tmp_path / "dest", trust=signed.policy, plain_http=True)
    assert (tmp_path / "dest" / "dists_vgg16.int8.calib.npy").read_bytes() == (signed.root / "dists_vgg16.int8.calib.npy").read_bytes()


def _docker_config(folder: Path, host: str, user: str, pw: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{pw}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {f"https://{host}/v1/": {"auth": auth}}}))


def test_basic_credentials_from_docker_config(oci: OciServer, signed: Signed, published: dict[str, Any],
                                              proxy: Proxy, tmp_path: Path) -> None:
    proxy.require = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    with pytest.raises(TransportError, match="Docker config has none"):
        pull(proxy.ref(), registry=tmp_path / "dest", trust=signed.policy, plain_http=True)
    _docker_config(Path(os.environ["DOCKER_CONFIG"]), proxy.host, "alice", "s3cret")
    assert pull(proxy.ref(), registry=tmp_path / "dest", trust=signed.policy, plain_http=True).changed


def test_bearer_token_flow(oci: OciServer, signed: Signed, published: dict[str, Any], proxy: Proxy, tmp_path: Path) -> None:
    basic = "Basic " + base64.b64encode(b"bob:pw").decode()
    asked: list[str] = []

    def token(h: Any) -> None:
        asked.append(h.path)
        if h.headers.get("Authorization") != basic:
            respond(401, b"{}")(h)
            return
        respond(200, json.dumps({"token": "tok-123"}).encode(), {"Content-Type": "application/json"})(h)

    proxy.require = "Bearer tok-123"
    proxy.overrides["/token"] = token
    _docker_config(Path(os.environ["DOCKER_CONFIG"]), proxy.host, "bob", "pw")
    assert pull(proxy.ref(), registry=tmp_path / "dest", trust=signed.policy, plain_http=True).changed
    assert asked and "scope=repository%3Atiny%2Fdists%3Apull" in asked[0] and "service=test" in asked[0]


def test_credentials_for_reads_auths(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {"ghcr.io": {"username": "u", "password": "p"},
                                         "https://index.docker.io/v1/": {"auth": base64.b64encode(b"d:x:y").decode()}},
                               "credsStore": "desktop"}))
    assert credentials_for("ghcr.io", cfg) == ("u", "p")
    assert credentials_for("index.docker.io", cfg) == ("d", "x:y")
    assert credentials_for("quay.io", cfg) is None
    cfg.write_text('{"auths": {"ghcr.io": {"auth": "not base64!"}}}')
    with pytest.raises(InputError, match="base64"):
        credentials_for("ghcr.io", cfg)


_seg = st.from_regex(r"[a-z0-9]+([._-][a-z0-9]+)?", fullmatch=True)


@given(host=st.sampled_from(["ghcr.io", "127.0.0.1:5000", "localhost:1", "[::1]:5000", "r.example.com"]),
       repo=st.lists(_seg, min_size=1, max_size=3).map("/".join),
       tag=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
       digest=st.one_of(st.none(), st.from_regex(r"[0-9a-f]{64}", fullmatch=True)))
def test_reference_round_trip(host: str, repo: str, tag: str, digest: str | None) -> None:
    text = f"oci://{host}/{repo}:{tag}" + (f"@sha256:{digest}" if digest else "")
    r = Ref.parse(text)
    assert (r.host, r.repo, r.tag) == (host, repo, tag)
    assert str(r) == text


@given(st.text(max_size=80))
def test_reference_parser_only_refuses_cleanly(text: str) -> None:
    with contextlib.suppress(UsageError):
        Ref.parse("oci://" + text)


@pytest.mark.parametrize("bad", ["oci://h/Repo:x", "oci://h/r:../x", "oci://h/r@sha256:abc", "https://h/r:t", "oci://h/r",
                                 "oci:///r:t", "oci://h/r/../s:t"])
def test_bad_references(bad: str) -> None:
    with pytest.raises(UsageError):
        Ref.parse(bad)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.slow
def test_redirect_to_https_storage_without_credentials(oci: OciServer, signed: Signed, published: dict[str, Any],
                                                       proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A blob GET redirected to object storage over https is followed, and the credentials stay with the registry."""
    import http.server
    import ssl
    import threading

    cert, key = _self_signed(tmp_path)
    onnx = published["dists_vgg16.onnx"]
    data = (signed.root / "dists_vgg16.onnx").read_bytes()
    seen: list[str | None] = []

    class Storage(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            respond(200, data)(self)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Storage)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        url = f"https://127.0.0.1:{server.server_address[1]}/storage/{onnx['sha256']}?sig=abc"
        proxy.overrides[f"/v2/tiny/dists/blobs/sha256:{onnx['sha256']}"] = respond(307, b"", {"Location": url})
        proxy.require = "Basic " + base64.b64encode(b"alice:s3cret").decode()
        _docker_config(Path(os.environ["DOCKER_CONFIG"]), proxy.host, "alice", "s3cret")
        res = pull(proxy.ref(), registry=tmp_path / "dest", trust=signed.policy, plain_http=True)
    finally:
        server.shutdown()
        server.server_close()
    assert res.changed and (tmp_path / "dest" / "dists_vgg16.onnx").read_bytes() == data
    assert seen == [None]  # followed to https, and no Authorization header reached the storage host


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4), max_leaves=20)


@given(st.dictionaries(st.sampled_from(["schemaVersion", "mediaType", "artifactType", "config", "layers", "x"]), _json, max_size=6),
       st.lists(st.dictionaries(st.sampled_from(["digest", "size", "annotations", "mediaType"]), _json, max_size=4), max_size=4))
def test_manifest_reader_refuses_cleanly(doc: dict[str, Any], layers: list[dict[str, Any]]) -> None:
    """Whatever a registry sends as a manifest, the reader answers with a tinyreg error or a checked layer map."""
    from registry.distribution import artifact as art
    from registry.distribution.puller import _layers, _model_manifest
    from registry.errors import Error

    doc = {**doc, "schemaVersion": 2, "artifactType": art.MODEL_ARTIFACT,
           "config": {"mediaType": art.MODEL_CONFIG, "digest": "sha256:" + "a" * 64, "size": 10}, "layers": layers}
    try:
        m = _model_manifest(json.dumps(doc).encode(), "fuzz")
        out = _layers(m, "fuzz")
    except Error:
        return
    for rel, (digest, size) in out.items():
        assert not rel.startswith((".", "/")) and ".." not in rel.split("/")
        assert digest.startswith("sha256:") and isinstance(size, int) and size >= 0


def test_symlinked_cached_registry_folder_is_refused(oci: OciServer, signed: Signed, published: dict[str, Any],
                                                    _isolated_cache: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone who shares the cache plants ``<cache>/oci/registries/<key>`` as a symlink to a folder of the user's
    (here: one of their pulled registries): ``load("oci://...")`` must not pull into wherever it points."""
    import hashlib

    import registry

    monkeypatch.setenv("TINYREG_OCI_PLAIN_HTTP", "1")
    mine = tmp_path / "my-pulled"
    mine.mkdir()
    key = hashlib.sha256(f"{oci.host}/tiny/dists".encode()).hexdigest()[:24]
    regs = _isolated_cache / "oci" / "registries"
    regs.mkdir(parents=True)
    os.symlink(mine, regs / key)
    with pytest.raises(InputError, match="symlink"):
        registry.load(oci.ref(), trust=signed.policy)
    assert not any(mine.iterdir())
    os.unlink(regs / key)
    os.rmdir(regs)
    os.symlink(mine, regs)  # one level up
    with pytest.raises(InputError, match="symlink"):
        registry.load(oci.ref(), trust=signed.policy)
    assert not any(mine.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("where", ["blob", "part"])
def test_fifo_planted_in_the_cache_never_hangs_a_pull(oci: OciServer, signed: Signed, published: dict[str, Any],
                                                      _isolated_cache: Path, tmp_path: Path, where: str) -> None:
    """A FIFO in place of a cached blob (someone sharing the cache): opening it for reading would wait for a writer
    forever. The pull discards it and fetches the blob afresh."""
    import subprocess
    import sys

    onnx = published["dists_vgg16.onnx"]
    folder = blobs(_isolated_cache)
    folder.mkdir(parents=True)
    os.mkfifo(folder / (onnx["sha256"] + (".part" if where == "part" else "")))
    code = ("import sys; from registry.distribution import pull; "
            f"pull({oci.ref()!r}, registry={str(tmp_path / 'dest')!r}, trust={str(signed.policy)!r}, plain_http=True)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=os.environ)
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "dest" / "dists_vgg16.onnx").read_bytes() == (signed.root / "dists_vgg16.onnx").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("what", ["docker-config", "pull-state"])
def test_fifo_in_place_of_docker_config_or_pull_state_is_refused_not_a_hang(
    oci: OciServer, signed: Signed, published: dict[str, Any], tmp_path: Path, what: str,
) -> None:
    """Whoever sets the environment (DOCKER_CONFIG, TINYREG_STATE_DIR) points it at a FIFO: one line, exit 2, no hang."""
    import subprocess
    import sys

    env = dict(os.environ)
    folder = tmp_path / what
    folder.mkdir()
    os.mkfifo(folder / ("config.json" if what == "docker-config" else "pulled.json"))
    env["DOCKER_CONFIG" if what == "docker-config" else "TINYREG_STATE_DIR"] = str(folder)
    p = subprocess.run([sys.executable, "-m", "registry", "pull", oci.ref(), "--registry", str(tmp_path / "dest"),
                        "--trust", str(signed.policy), "--plain-http"], capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 2 and "not a regular file" in p.stderr, (p.returncode, p.stderr[-1500:])
    assert tree(tmp_path / "dest") is None


def test_a_fifo_as_the_pull_state_is_bad_input_not_a_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pull state is read like every other document: a regular file only (a FIFO used to block the read)."""
    from registry.distribution import state

    monkeypatch.setenv("TINYREG_STATE_DIR", str(tmp_path / "st"))
    (tmp_path / "st").mkdir(mode=0o700)
    os.mkfifo(tmp_path / "st" / "pulled.json")
    with pytest.raises(InputError, match="pull state"):
        state.records(tmp_path / "reg")
