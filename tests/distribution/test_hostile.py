"""The registry operator is the attacker: every refused pull leaves DEST byte for byte as it was.

DEST already holds a legitimately pulled entry (lpips_vgg16), so "unchanged" means something.
Cases a real registry cannot produce (endless or slow bodies, redirects, lying sizes) are
served by ``Proxy`` in front of the real registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from registry.distribution import artifact as art
from registry.distribution import pull, push
from registry.distribution.oci import TransportError, dumps
from registry.errors import Error, IntegrityError, SignatureError
from registry.signing.sign import sign_entries
from registry.verify import verify_registry
from tests.distribution import oci_tools as ot
from tests.distribution.conftest import OciServer, Proxy, respond, tree
from tests.factories import Signed, make_signed

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Published:
    s: Signed
    oci: OciServer
    dest: Path
    digest: str
    manifest: bytes

    def doc(self) -> dict[str, Any]:
        return json.loads(self.manifest)

    def layer(self, path: str) -> dict[str, Any]:
        return next(x for x in self.doc()["layers"] if x["annotations"]["org.cncf.model.filepath"] == path)


@pytest.fixture
def pub(oci: OciServer, signed: Signed, tmp_path: Path) -> Published:
    push("lpips_vgg16", f"oci://{oci.host}/tiny/lpips", registry=signed.reg, trust=signed.policy, plain_http=True)
    res = push("dists_vgg16", f"oci://{oci.host}/tiny/dists", registry=signed.reg, trust=signed.policy, plain_http=True)
    dest = tmp_path / "dest"
    pull(oci.ref("tiny/lpips", "lpips_vgg16"), registry=dest, trust=signed.policy, plain_http=True)
    data, _ = ot.manifest(oci.host, "tiny/dists", res.digest)
    return Published(signed, oci, dest, res.digest, data)


def move_dists_tag_to_lpips(pub: Published) -> bytes:
    """The attacker copies the lpips release into the dists repository under the dists tag, with its genuine
    signature attached; returns lpips's manifest bytes."""
    lpips, _ = ot.manifest(pub.oci.host, "tiny/lpips", "lpips_vgg16")
    for layer in [*json.loads(lpips)["layers"], json.loads(lpips)["config"]]:
        resp = ot.transport(pub.oci.host).open_blob("tiny/lpips", layer["digest"])
        body = resp.raw.read()
        resp.close()
        ot.upload(pub.oci.host, "tiny/dists", body)
    ot.put_manifest(pub.oci.host, "tiny/dists", "dists_vgg16", lpips)
    parts = ot.signature_parts(pub.oci.host, "tiny/lpips", ot.sha(lpips))[0]
    ot.attach(pub.oci.host, "tiny/dists", lpips, [(k, parts[k]) for k in ("entry-bundle", "registry", "snapshot")])
    return lpips


def refused(p: Published, ref: str, exc: type[Error], match: str, **kw: Any) -> None:
    before = tree(p.dest)
    with pytest.raises(exc, match=match):
        pull(ref, registry=p.dest, trust=p.s.policy, plain_http=True, **kw)
    assert tree(p.dest) == before


def forged(p: Published, doc: dict[str, Any], tag: str, *, sign_with: str | None = None) -> str:
    """Put a forged model manifest under ``tag`` with the genuine signature re-attached to it."""
    data, _ = ot.put_manifest(p.oci.host, "tiny/dists", tag, doc)
    ot.reattach_original(p.oci.host, "tiny/dists", p.digest, data)
    return p.oci.ref(tag=tag)


# ----------------------------------------------------------------------------- with the real registry


def test_blob_altered_in_server_storage(pub: Published) -> None:
    blob = pub.oci.blob_file(pub.layer("dists_vgg16.onnx")["digest"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    refused(pub, pub.oci.ref(), IntegrityError, "sent bytes with sha256")


def test_retag_to_entry_signed_by_another_key(pub: Published, tmp_path: Path) -> None:
    other = make_signed(tmp_path / "other")
    push("dists_vgg16", pub.oci.ref(), registry=other.reg, trust=other.policy, plain_http=True)  # same tag, other signer
    refused(pub, pub.oci.ref(), SignatureError, "no attached signature verifies")


def test_tag_moved_to_another_entry_of_the_same_signer(pub: Published) -> None:
    move_dists_tag_to_lpips(pub)
    refused(pub, pub.oci.ref(), SignatureError, "not the expected 'dists_vgg16'", entry="dists_vgg16")


def test_rollback_to_an_older_signed_release(pub: Published) -> None:
    s = pub.s
    ok = pull(pub.oci.ref(), registry=pub.dest, trust=s.policy, plain_http=True)
    assert ok.snapshot_version == 1
    v1 = {p: (pub.dest / p).read_bytes() for p in ("registry.json", "dists_vgg16.onnx.sigstore.json", "dists_vgg16.md")}
    doc = s.doc()
    s.row(doc)["notes"] += " Release 2."
    s.write_doc(doc)
    sign_entries(s.reg, None, key=s.priv)  # snapshot version 2
    v2 = push("dists_vgg16", pub.oci.ref(), registry=s.reg, trust=s.policy, plain_http=True)
    assert v2.digest != pub.digest and v2.snapshot_version == 2
    assert pull(pub.oci.ref(), registry=pub.dest, trust=s.policy, plain_http=True).snapshot_version == 2
    ot.put_manifest(pub.oci.host, "tiny/dists", "dists_vgg16", pub.manifest)  # the operator re-tags release 1
    refused(pub, pub.oci.ref(), SignatureError, "rollback")
    refused(pub, f"oci://{pub.oci.host}/tiny/dists@{pub.digest}", SignatureError, "rollback")
    # the same attack on the folder itself: release 1's signed files put back in DEST
    for name, data in v1.items():
        (pub.dest / name).write_bytes(data)
    report = verify_registry(pub.dest / "registry.json", trust=s.policy)
    assert any("not the one pulled" in f.message for f in report.errors), [str(f) for f in report.findings]


def test_frozen_release_is_refused(pub: Published) -> None:
    later = datetime.now(UTC) + timedelta(days=800)
    refused(pub, pub.oci.ref(), SignatureError, "expired", now=later)
    pull(pub.oci.ref(), registry=pub.dest, trust=pub.s.policy, plain_http=True)
    report = verify_registry(pub.dest / "registry.json", trust=pub.s.policy, now=later)
    assert any("expired" in f.message for f in report.errors)


@pytest.mark.slow
@pytest.mark.parametrize("change, match", [
    ("extra", "layers not signed: extra.bin"),
    ("missing", "signed files with no layer: dists_vgg16.int8.calib.npy"),
    ("dotdot", "not a relative registry path"),
    ("hidden", "not a relative registry path"),
])
def test_manifest_layers_must_equal_signed_files(pub: Published, change: str, match: str) -> None:
    doc = pub.doc()
    if change == "extra":
        data = b"planted"
        digest = ot.upload(pub.oci.host, "tiny/dists", data)
        doc["layers"].append({"mediaType": "application/vnd.cncf.model.weight.v1.raw", "digest": digest,
                              "size": len(data), "annotations": {"org.cncf.model.filepath": "extra.bin"}})
    elif change == "missing":
        doc["layers"] = [x for x in doc["layers"] if not x["annotations"]["org.cncf.model.filepath"].endswith(".npy")]
    elif change == "dotdot":
        doc["layers"][0]["annotations"]["org.cncf.model.filepath"] = "../../home/user/.bashrc"
    else:
        doc["layers"][0]["annotations"]["org.cncf.model.filepath"] = ".git/hooks/post-checkout"
    refused(pub, forged(pub, doc, f"forged-{change}"), IntegrityError, match)


def test_bundle_of_another_entry(pub: Published) -> None:
    lpips, _ = ot.manifest(pub.oci.host, "tiny/lpips", "lpips_vgg16")
    parts = ot.signature_parts(pub.oci.host, "tiny/lpips", ot.sha(lpips))[0]
    doc = pub.doc()
    doc["annotations"]["note"] = "only the lpips signature is attached to this one"
    data, _ = ot.put_manifest(pub.oci.host, "tiny/dists", "other-bundle", doc)
    ot.attach(pub.oci.host, "tiny/dists", data, [(k, parts[k]) for k in ("entry-bundle", "registry", "snapshot")])
    refused(pub, pub.oci.ref(tag="other-bundle"), IntegrityError, "does not match the signed entry")


def test_deep_json_bundle(pub: Published) -> None:
    parts = ot.signature_parts(pub.oci.host, "tiny/dists", pub.digest)[0]
    doc = pub.doc()
    doc["annotations"]["note"] = "deep"
    data, _ = ot.put_manifest(pub.oci.host, "tiny/dists", "deep", doc)
    deep = b"[" * 100_000 + b"]" * 100_000
    ot.attach(pub.oci.host, "tiny/dists", data, [("entry-bundle", deep), ("registry", parts["registry"]), ("snapshot", parts["snapshot"])])
    refused(pub, pub.oci.ref(tag="deep"), SignatureError, "nested more than")


def test_huge_bundle(pub: Published) -> None:
    parts = ot.signature_parts(pub.oci.host, "tiny/dists", pub.digest)[0]
    doc = pub.doc()
    doc["annotations"]["note"] = "huge"
    data, _ = ot.put_manifest(pub.oci.host, "tiny/dists", "huge", doc)
    huge = b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    ot.attach(pub.oci.host, "tiny/dists", data, [("entry-bundle", huge), ("registry", parts["registry"]), ("snapshot", parts["snapshot"])])
    refused(pub, pub.oci.ref(tag="huge"), SignatureError, "up to 1048576 bytes")


def test_unsigned_manifest(pub: Published) -> None:
    doc = pub.doc()
    doc["annotations"]["note"] = "no signature attached"
    ot.put_manifest(pub.oci.host, "tiny/dists", "unsigned", doc)
    refused(pub, pub.oci.ref(tag="unsigned"), SignatureError, "no signature is attached")


# ----------------------------------------------------------------------------- through a hostile proxy


def blob_path(p: Published, file: str) -> str:
    return f"/v2/tiny/dists/blobs/{p.layer(file)['digest']}"


@pytest.mark.slow
def test_declared_size_far_above_real(pub: Published, proxy: Proxy) -> None:
    doc = pub.doc()
    doc["layers"][0]["size"] = 50 * 1024**3
    data = dumps(doc)
    ot.reattach_original(pub.oci.host, "tiny/dists", pub.digest, data)
    proxy.overrides["/v2/tiny/dists/manifests/dists_vgg16"] = respond(200, data, {"Content-Type": art.MANIFEST_TYPE})
    refused(pub, proxy.ref(), IntegrityError, "differs from the row's pin")
    assert not any("/blobs/" in path and "sha256:" in path and m == "GET" and path.endswith(doc["layers"][0]["digest"])
                   for m, path, _ in proxy.seen)  # refused before the blob was asked for


@pytest.mark.slow
def test_manifest_other_than_the_pinned_digest(pub: Published, proxy: Proxy) -> None:
    other = pub.doc()
    other["annotations"]["x"] = "y"
    proxy.overrides[f"/v2/tiny/dists/manifests/{pub.digest}"] = respond(200, dumps(other))
    refused(pub, f"oci://{proxy.host}/tiny/dists@{pub.digest}", IntegrityError, "not the pinned one")


@pytest.mark.slow
def test_endless_blob(pub: Published, proxy: Proxy) -> None:
    def endless(h: Any) -> None:
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            while not proxy.stop.is_set():
                h.wfile.write(b"\0" * 65536)
        except OSError:
            pass

    proxy.overrides[blob_path(pub, "dists_vgg16.onnx")] = endless
    refused(pub, proxy.ref(), IntegrityError, "runs past its declared size")


@pytest.mark.slow  # waits out a deadline or a child process; make test runs it
def test_slowloris_blob(pub: Published, proxy: Proxy) -> None:
    size = pub.layer("dists_vgg16.onnx")["size"]

    def drip(h: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(size))
        h.end_headers()
        try:
            while not proxy.stop.is_set():
                h.wfile.write(b"\0")
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    proxy.overrides[blob_path(pub, "dists_vgg16.onnx")] = drip
    t0 = time.monotonic()
    refused(pub, proxy.ref(), TransportError, "too slow", timeout=1.0)
    assert time.monotonic() - t0 < 20


def test_redirect_to_plain_http(pub: Published, proxy: Proxy) -> None:
    target = f"http://127.0.0.1:{pub.oci.port}{blob_path(pub, 'dists_vgg16.onnx')}"
    proxy.overrides[blob_path(pub, "dists_vgg16.onnx")] = respond(302, b"", {"Location": target})
    refused(pub, proxy.ref(), TransportError, "https only")


def test_endless_token_and_documents_are_capped(pub: Published, proxy: Proxy) -> None:
    def endless_manifest(h: Any) -> None:
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            h.wfile.write(b'{"a":"')
            while not proxy.stop.is_set():
                h.wfile.write(b"x" * 65536)
        except OSError:
            pass

    proxy.overrides["/v2/tiny/dists/manifests/dists_vgg16"] = endless_manifest
    refused(pub, proxy.ref(), TransportError, "cap")


@pytest.mark.slow  # waits out a deadline or a child process; make test runs it
def test_pull_killed_mid_blob_then_resumed(pub: Published, proxy: Proxy, _isolated_cache: Path) -> None:
    calib = pub.layer("dists_vgg16.int8.calib.npy")
    size, half = calib["size"], calib["size"] // 2
    blob = pub.oci.blob_file(calib["digest"]).read_bytes()

    def stall(h: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(size))
        h.end_headers()
        h.wfile.write(blob[:half])
        h.wfile.flush()
        proxy.stop.wait(60)

    proxy.overrides[blob_path(pub, "dists_vgg16.int8.calib.npy")] = stall
    before = tree(pub.dest)
    code = ("from registry.distribution import pull; import sys; "
            f"pull({proxy.ref()!r}, registry={str(pub.dest)!r}, trust={str(pub.s.policy)!r}, plain_http=True)")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    part = _isolated_cache / "oci" / "blobs" / "sha256" / (calib["digest"][7:] + ".part")
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size >= half):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the pull never reached the blob"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert tree(pub.dest) == before  # killed: nothing written
    del proxy.overrides[blob_path(pub, "dists_vgg16.int8.calib.npy")]
    proxy.seen.clear()
    res = pull(proxy.ref(), registry=pub.dest, trust=pub.s.policy, plain_http=True)
    assert res.changed
    ranges = [rng for m, path, rng in proxy.seen if path == blob_path(pub, "dists_vgg16.int8.calib.npy")]
    assert ranges == [f"bytes={half}-"]  # resumed where the killed pull stopped
    assert (pub.dest / "dists_vgg16.int8.calib.npy").read_bytes() == blob
    assert not part.exists()


@pytest.mark.slow  # waits out a deadline or a child process; make test runs it
def test_many_slow_referrers_share_one_deadline(pub: Published, proxy: Proxy) -> None:
    """16 referrers, each dripping a 4 MiB manifest: one overall budget, not 16 deadlines in turn."""
    def drip(h: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(4 * 1024 * 1024))
        h.end_headers()
        try:
            while not proxy.stop.is_set():
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    fakes = ["sha256:" + f"{i:064x}" for i in range(16)]
    index = {"schemaVersion": 2, "mediaType": art.INDEX_TYPE,
             "manifests": [{"mediaType": art.MANIFEST_TYPE, "digest": d, "size": 4 * 1024 * 1024,
                            "artifactType": art.BUNDLE_TYPE} for d in fakes]}
    proxy.overrides[f"/v2/tiny/dists/manifests/{art.fallback_tag(pub.digest)}"] = respond(200, dumps(index))
    for d in fakes:
        proxy.overrides[f"/v2/tiny/dists/manifests/{d}"] = drip
    t0 = time.monotonic()
    refused(pub, proxy.ref(), SignatureError, "too slow", timeout=0.5)
    assert time.monotonic() - t0 < 20


def test_tag_moved_between_two_loads_is_refused(pub: Published, monkeypatch: pytest.MonkeyPatch) -> None:
    """``registry.load("oci://...:dists_vgg16")`` returns only a session, so its caller cannot see which entry it
    got: when the operator moves the tag to another entry of the same signer between two loads, the second load
    must refuse rather than hand over LPIPS under the DISTS name (a digest-pinned load takes what it pins)."""
    import registry
    from registry.distribution.cache import cache_root

    monkeypatch.setenv("TINYREG_OCI_PLAIN_HTTP", "1")
    with pytest.warns(UserWarning):
        first = registry.load(pub.oci.ref(), trust=pub.s.policy)
    assert first.get_outputs()[0].name
    cached = cache_root() / "oci" / "registries"
    before = tree(cached)
    lpips = move_dists_tag_to_lpips(pub)  # the tag moves
    with pytest.raises(SignatureError, match=r"not the expected 'dists_vgg16'.*@sha256"):
        registry.load(pub.oci.ref(), trust=pub.s.policy)
    assert tree(cached) == before
    with pytest.warns(UserWarning):  # pinned by digest: the caller named exactly what it wants
        registry.load(f"oci://{pub.oci.host}/tiny/dists@{ot.sha(lpips)}", trust=pub.s.policy)
