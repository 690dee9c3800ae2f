"""Push and pull against a real registry (CNCF distribution 2.8: no referrers API, so the tag fallback is used)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import registry
from registry.distribution import pull, push
from registry.errors import IntegrityError, SignatureError, UsageError
from registry.runtime.loader import SmokeModelWarning
from registry.store.document import read_registry
from registry.verify import verify_registry
from tests.distribution.conftest import OciServer, Proxy, need_tool, tree
from tests.factories import Signed
from tests.factories import invoke_cli as cli


def do_push(s: Signed, server_host: str, entry: str = "dists_vgg16", repo: str = "tiny/dists", **kw: object) -> str:
    res = push(entry, f"oci://{server_host}/{repo}", registry=s.reg, trust=s.policy, plain_http=True, **kw)  # type: ignore[arg-type]
    return res.digest


def test_push_pull_verify_load(oci: OciServer, signed: Signed, tmp_path: Path) -> None:
    digest = do_push(signed, oci.host)
    again = push("dists_vgg16", oci.ref(), registry=signed.reg, trust=signed.policy, plain_http=True)
    assert again.digest == digest and not again.uploaded and not again.manifest_written  # a no-op
    dest = tmp_path / "dest"
    res = pull(oci.ref(), registry=dest, trust=signed.policy, plain_http=True)
    assert res.verified and res.changed and res.digest == digest and res.snapshot_version == 1
    # the entry is reproduced exactly: same row, same bytes
    want = signed.row(signed.doc())
    assert read_registry(dest / "registry.json").get("dists_vgg16") == want
    for f in want["files"]:
        assert (dest / f["path"]).read_bytes() == (signed.root / f["path"]).read_bytes()
    code, out, err = cli("verify", "--trust", str(signed.policy), "--registry", str(dest), "--json")
    assert code == 0, (out, err)
    assert json.loads(out)["ok"] is True
    with pytest.warns(SmokeModelWarning):
        registry.load("dists_vgg16", dest, trust=signed.policy)
    before = tree(dest)
    res2 = pull(f"oci://{oci.host}/tiny/dists@{digest}", registry=dest, trust=signed.policy, plain_http=True)
    assert not res2.changed and res2.from_cache == res2.files
    assert tree(dest) == before


def test_second_entry_joins_the_pulled_registry(oci: OciServer, signed: Signed, tmp_path: Path) -> None:
    do_push(signed, oci.host)
    do_push(signed, oci.host, "lpips_vgg16", "tiny/lpips")
    dest = tmp_path / "dest"
    pull(oci.ref(), registry=dest, trust=signed.policy, plain_http=True)
    pull(oci.ref("tiny/lpips", "lpips_vgg16"), registry=dest, trust=signed.policy, plain_http=True)
    assert sorted(read_registry(dest / "registry.json").ids()) == ["dists_vgg16", "lpips_vgg16"]
    assert verify_registry(dest / "registry.json", trust=signed.policy).ok


def test_cli_push_pull(oci: OciServer, signed: Signed, tmp_path: Path) -> None:
    code, out, err = cli("push", "dists_vgg16", f"oci://{oci.host}/tiny/dists", "--plain-http", "--registry", str(signed.reg),
                         "--trust", str(signed.policy))
    assert code == 0, err
    assert out.strip().startswith(f"oci://{oci.host}/tiny/dists@sha256:")
    code, out, err = cli("push", "dists_vgg16", f"oci://{oci.host}/tiny/dists", "--plain-http", "--registry", str(signed.reg),
                         "--trust", str(signed.policy), "--json")
    assert code == 0 and json.loads(out)["changed"] is False
    dest = tmp_path / "dest"
    code, out, err = cli("pull", oci.ref(), "--plain-http", "--registry", str(dest), "--json")
    assert code == 2 and "--trust FILE" in err and tree(dest) is None  # no policy: refused
    code, out, err = cli("pull", oci.ref(), "--plain-http", "--registry", str(dest), "--trust", str(signed.policy), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ok"] and doc["verified"] and doc["entry"] == "dists_vgg16"


def test_plain_http_only_for_loopback(signed: Signed) -> None:
    with pytest.raises(UsageError, match="loopback"):
        push("dists_vgg16", "oci://registry.example.com/tiny/dists", registry=signed.reg, plain_http=True)
    code, _, err = cli("pull", "oci://registry.example.com/tiny/dists:x", "--plain-http", "--unverified",
                       "--registry", "/nonexistent-dest")
    assert code == 2 and "loopback" in err


def test_skopeo_sees_one_layer_per_file(oci: OciServer, signed: Signed) -> None:
    skopeo = need_tool("skopeo", "skopeo")
    do_push(signed, oci.host)
    raw = subprocess.run([skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{oci.host}/tiny/dists:dists_vgg16"],
                         capture_output=True, check=True, timeout=60).stdout
    m = json.loads(raw)
    assert m["artifactType"] == "application/vnd.cncf.model.manifest.v1+json"
    assert m["config"]["mediaType"] == "application/vnd.cncf.model.config.v1+json"
    row = signed.row(signed.doc())
    pins = {f["path"]: (f"sha256:{f['sha256']}", f["size"]) for f in row["files"] if f["role"] != "signature"}
    got = {layer["annotations"]["org.cncf.model.filepath"]: (layer["digest"], layer["size"]) for layer in m["layers"]}
    assert got == pins and len(m["layers"]) == len(pins)
    assert all(layer["mediaType"].startswith("application/vnd.cncf.model.") for layer in m["layers"])


def test_load_oci_reference(oci: OciServer, signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    do_push(signed, oci.host)
    monkeypatch.setenv("TINYREG_OCI_PLAIN_HTTP", "1")
    with pytest.raises(UsageError, match="trust policy"):
        registry.load(oci.ref())
    with pytest.warns(SmokeModelWarning):
        sess = registry.load(oci.ref(), trust=signed.policy)
    assert [i.name for i in sess.get_inputs()] == ["ref", "dist"]


def test_unsigned_needs_both_flags(oci: OciServer, signed: Signed, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(Path(registry.__file__).resolve().parents[1] / "model" / "tiny", plain)
    with pytest.raises(UsageError, match="not signed"):
        push("ssim_luma", f"oci://{oci.host}/tiny/ssim", registry=plain / "registry.json", plain_http=True)
    push("ssim_luma", f"oci://{oci.host}/tiny/ssim", registry=plain / "registry.json", plain_http=True, unsigned=True)
    dest = tmp_path / "dest"
    with pytest.raises(SignatureError, match="no signature"):
        pull(oci.ref("tiny/ssim", "ssim_luma"), registry=dest, trust=signed.policy, plain_http=True)
    assert tree(dest) is None
    with pytest.raises(UsageError):
        pull(oci.ref("tiny/ssim", "ssim_luma"), registry=dest, plain_http=True)
    res = pull(oci.ref("tiny/ssim", "ssim_luma"), registry=dest, unverified=True, plain_http=True)
    assert not res.verified
    report = verify_registry(dest / "registry.json", trust=signed.policy)  # an unverified entry never passes the consumer's gate
    assert not report.ok


def test_refuses_entry_that_does_not_verify(oci: OciServer, signed: Signed) -> None:
    p = signed.root / "dists_vgg16.json"
    original = p.read_bytes()
    p.write_bytes(original.replace(b"}", b" }", 1))  # another size
    with pytest.raises(IntegrityError, match="size"):
        do_push(signed, oci.host)
    flipped = bytearray(original)
    flipped[-2] ^= 0x01  # same size, other bytes
    p.write_bytes(bytes(flipped))
    with pytest.raises(SignatureError, match="changed"):
        do_push(signed, oci.host)
    p.write_bytes(original)
    doc = signed.doc()
    signed.row(doc)["notes"] += " edited after signing"
    signed.write_doc(doc)
    with pytest.raises(SignatureError, match="fields changed since signing"):
        do_push(signed, oci.host)


def test_pull_into_a_maintainer_folder_is_refused(oci: OciServer, signed: Signed) -> None:
    do_push(signed, oci.host)
    before = tree(signed.root)
    with pytest.raises(UsageError, match="folder snapshot"):
        pull(oci.ref(), registry=signed.root, trust=signed.policy, plain_http=True)
    assert tree(signed.root) == before


def test_cli_exit_codes(oci: OciServer, signed: Signed, tmp_path: Path) -> None:
    """1 for an integrity or signature finding, 2 for an unreachable registry or a refused option; one stderr line."""
    from tests.distribution.conftest import free_port

    digest = do_push(signed, oci.host)
    dest = tmp_path / "dest"
    code, out, err = cli("pull", f"oci://127.0.0.1:{free_port()}/tiny/dists:x", "--plain-http", "--trust", str(signed.policy),
                         "--registry", str(dest), "--timeout", "2")
    assert code == 2 and len(err.strip().splitlines()) == 1 and tree(dest) is None
    from tests.distribution import oci_tools as ot

    _, doc = ot.manifest(oci.host, "tiny/dists", digest)
    onnx = next(x for x in doc["layers"] if x["annotations"]["org.cncf.model.filepath"] == "dists_vgg16.onnx")
    blob = oci.blob_file(onnx["digest"])
    blob.write_bytes(blob.read_bytes()[::-1])
    code, out, err = cli("pull", oci.ref(), "--plain-http", "--trust", str(signed.policy), "--registry", str(dest), "--json")
    assert code == 1 and json.loads(out)["ok"] is False and tree(dest) is None
    code, out, err = cli("pull", oci.ref(), "--plain-http", "--unverified", "--trust", str(signed.policy), "--registry", str(dest))
    assert code == 2 and "contradict" in err
    code, out, err = cli("pull", oci.ref(), "--plain-http", "--unverified", "--registry", str(dest))
    assert "UNVERIFIED PULL" in err and code == 1  # loud, and the altered blob is still caught by its digest


def test_load_from_pulled_folder_reads_the_bundle_once(oci: OciServer, signed: Signed, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundle bytes checked against the pull record are the bytes whose signature is verified (no re-read)."""
    import registry._internal.hashing as hashing

    do_push(signed, oci.host)
    dest = tmp_path / "dest"
    pull(oci.ref(), registry=dest, trust=signed.policy, plain_http=True)
    real = hashing.sha256_file

    def no_bundle_rehash(path: object, *a: object, **kw: object) -> object:
        assert not str(path).endswith(".sigstore.json"), f"{path} hashed from disk apart from the bytes verified"
        return real(path, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(hashing, "sha256_file", no_bundle_rehash)
    with pytest.warns(SmokeModelWarning):
        registry.load("dists_vgg16", dest, trust=signed.policy)


def test_push_verifies_the_snapshot_bytes_it_pushes(oci: OciServer, signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder snapshot is read once: the bytes verified under the policy are the bytes sent as its referrer layer."""
    import registry.signing.snapshot as snapshot

    real = snapshot.read_raw

    def no_snapshot_reread(path: object, *a: object, **kw: object) -> bytes:
        assert Path(str(path)).name != "registry.sigstore.json", "the snapshot was read again apart from the bytes pushed"
        return real(path, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshot, "read_raw", no_snapshot_reread)
    do_push(signed, oci.host)


def test_push_verifies_each_signature_once(oci: OciServer, signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry bundle's DSSE is verified once (its signed subjects come back from that check), the snapshot's once."""
    from registry.signing.policy import TrustPolicy

    real = TrustPolicy.verify_dsse
    seen: list[str] = []

    def counted(self: TrustPolicy, bundle_json: bytes, what: str) -> tuple[str, bytes]:
        seen.append(what)
        return real(self, bundle_json, what)

    monkeypatch.setattr(TrustPolicy, "verify_dsse", counted)
    do_push(signed, oci.host)
    assert len(seen) == 2, seen


def test_unverified_pull_fetches_the_config_once(oci: OciServer, signed: Signed, proxy: Proxy, tmp_path: Path) -> None:
    """The unsigned row is read from the model config; the same config is compared with it, not fetched again."""
    manifest = json.loads(oci.blob_file(do_push(signed, oci.host)).read_bytes())
    proxy.seen.clear()
    pull(proxy.ref(), registry=tmp_path / "dest", unverified=True, plain_http=True)
    config_gets = [p for m, p, _ in proxy.seen if m == "GET" and p.endswith(manifest["config"]["digest"])]
    assert len(config_gets) == 1, config_gets
