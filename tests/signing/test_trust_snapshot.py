"""registry.sigstore.json against the reference tools: the real ``model_signing`` CLI (dev extra) both ways."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from registry.signing._methods import model_signing_v1 as oms
from registry.store.layout import REGISTRY_NAME, SNAPSHOT_NAME
from registry.verify import verify_registry
from tests.factories import REPO, Signed, keypair, make_signed
from tests.factories import run_tinyreg as run

MODEL_SIGNING = str(Path(sys.executable).with_name("model_signing"))


@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    return make_signed(tmp_path)


def ms(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODEL_SIGNING, *args], capture_output=True, text=True, timeout=300)


def ms_verify(s: Signed, signature: Path | None = None) -> subprocess.CompletedProcess[str]:
    return ms("verify", "key", "--signature", str(signature or s.root / SNAPSHOT_NAME), "--public_key", str(s.pub), str(s.root))


def test_snapshot_format(signed: Signed) -> None:
    bundle = json.loads((signed.root / SNAPSHOT_NAME).read_bytes())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    st = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert st["predicateType"] == "https://model_signing/signature/v1.0"
    assert st["predicate"]["serialization"]["method"] == "files"
    assert SNAPSHOT_NAME in st["predicate"]["serialization"]["ignore_paths"]
    names = [r["name"] for r in st["predicate"]["resources"]]
    assert names == sorted(names, key=oms.sort_key)
    on_disk = sorted(str(p.relative_to(signed.root)) for p in signed.root.rglob("*") if p.is_file() and p.name != SNAPSHOT_NAME)
    assert sorted(names) == on_disk and REGISTRY_NAME in names  # every file, registry.json included


def ms_verify_in_process(s: Signed) -> int:
    """The same ``model_signing verify key`` command, run in this interpreter (its click entry point)."""
    from click.testing import CliRunner
    from model_signing._cli import main

    args = ["verify", "key", "--signature", str(s.root / SNAPSHOT_NAME), "--public_key", str(s.pub), str(s.root)]
    return CliRunner().invoke(main, args).exit_code


@pytest.mark.slow
def test_model_signing_accepts_fresh_snapshot_and_refuses_any_changed_byte(signed: Signed) -> None:
    ok = ms_verify(signed)  # the installed CLI, as a user runs it
    assert ok.returncode == 0 and "Verification succeeded" in ok.stdout + ok.stderr, ok.stdout + ok.stderr
    assert ms_verify_in_process(signed) == 0
    files = sorted(p for p in signed.root.rglob("*") if p.is_file())
    assert len(files) >= 10
    for path in files:  # every file of the folder, registry.json, bundles and the snapshot itself included
        original = path.read_bytes()
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]) if original else b"\0")
        assert ms_verify_in_process(signed) != 0, f"model_signing accepted a changed {path.name}"
        path.write_bytes(original)
    registry_json = signed.reg.read_bytes()
    signed.reg.write_bytes(registry_json.replace(b'"version": 1', b'"version": 2'))
    bad = ms_verify(signed)
    assert bad.returncode == 1 and "Verification failed" in bad.stderr
    signed.reg.write_bytes(registry_json)
    (signed.root / "extra.txt").write_text("unsigned\n")
    assert ms_verify_in_process(signed) != 0
    (signed.root / "extra.txt").unlink()
    assert ms_verify_in_process(signed) == 0


def test_snapshot_written_by_model_signing_passes_tinyreg(signed: Signed) -> None:
    """A maintainer may re-sign the folder with the reference tool instead: same format, same verdict."""
    p = ms("sign", "key", "--private_key", str(signed.priv), "--signature", str(signed.root / SNAPSHOT_NAME), str(signed.root))
    assert p.returncode == 0, p.stdout + p.stderr
    bundle = json.loads((signed.root / SNAPSHOT_NAME).read_bytes())
    assert len(bundle["verificationMaterial"]["publicKey"]["hint"]) == 64  # model_signing's hex hint, not cosign's
    assert verify_registry(signed.reg, trust=signed.policy).ok


@pytest.mark.slow  # runs the model_signing reference signer (~10 s)
def test_verify_bundle_accepts_model_signing_sign_key(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    shutil.copytree(REPO / "model" / "tiny", folder)
    priv, pub = keypair(tmp_path, "k")
    _, other = keypair(tmp_path, "other")
    sig = tmp_path / "model.sig"
    p = ms("sign", "key", "--private_key", str(priv), "--signature", str(sig), str(folder))
    assert p.returncode == 0, p.stdout + p.stderr
    ok = run("verify-bundle", str(folder), "--bundle", str(sig), "--key", str(pub))
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stderr
    assert "files of" in ok.stdout
    # a signature stored inside the folder is skipped, as model_signing does
    inner = folder / "model.sig"
    assert ms("sign", "key", "--private_key", str(priv), "--signature", str(inner), str(folder)).returncode == 0
    assert run("verify-bundle", str(folder), "--bundle", str(inner), "--key", str(pub)).returncode == 0
    inner.unlink()

    def refused(*args: str) -> str:
        r = run("verify-bundle", str(folder), "--bundle", str(sig), *args)
        assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        return r.stderr

    assert "does not verify" in refused("--key", str(other))
    model = folder / "dists_vgg16.onnx"
    data = model.read_bytes()
    model.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert "dists_vgg16.onnx" in refused("--key", str(pub))
    model.write_bytes(data)
    (folder / "extra.bin").write_bytes(b"x")
    assert "extra.bin" in refused("--key", str(pub))


@pytest.mark.slow
def test_verify_bundle_key_ignores_the_hint(signed: Signed) -> None:
    """Entry bundles carry cosign's hint, the snapshot model_signing's: both verify by the pinned key."""
    entry = run("verify-bundle", str(signed.root / "dists_vgg16.onnx"), "--bundle", str(signed.root / "dists_vgg16.onnx.sigstore.json"),
                "--key", str(signed.pub))
    assert entry.returncode == 0 and "dists_vgg16.onnx" in entry.stdout, entry.stderr
    folder = run("verify-bundle", str(signed.root), "--bundle", str(signed.root / SNAPSHOT_NAME), "--key", str(signed.pub))
    assert folder.returncode == 0, folder.stderr
    b = signed.root / "dists_vgg16.onnx.sigstore.json"
    doc = json.loads(b.read_text())
    doc["verificationMaterial"]["publicKey"]["hint"] = "bm90IHRoaXMga2V5"
    b.write_text(json.dumps(doc))
    again = run("verify-bundle", str(signed.root / "dists_vgg16.onnx"), "--bundle", str(b), "--key", str(signed.pub))
    assert again.returncode == 0, again.stderr
    swapped = run("verify-bundle", str(signed.root / "lpips_vgg16.onnx"), "--bundle", str(b), "--key", str(signed.pub))
    assert swapped.returncode == 1 and "no subject" in swapped.stderr
