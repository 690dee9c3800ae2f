from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

import registry
from registry.errors import IntegrityError, SignatureError, UsageError
from registry.export.smoke import add_smoke
from registry.signing.sign import set_policy, sign_entries
from registry.signing.verify import verify_bundle, verify_entry_signature
from registry.store.document import read_registry, transaction
from registry.store.repin import pin
from registry.verify import verify_registry
from tests.conftest import SIGSTORE, require_fixture
from tests.factories import SIGSTORE_FIXTURES as FIXTURES
from tests.factories import keypair

GH = "https://token.actions.githubusercontent.com"
GHO = "https://github.com/login/oauth"



@pytest.fixture
def signed(reg_path: Path, tmp_path: Path) -> tuple[Path, Path]:
    add_smoke(reg_path, "lpips")
    priv, pub = keypair(tmp_path, "k")
    set_policy(reg_path, public_key=pub)
    sign_entries(reg_path, None, key=priv)
    return reg_path, priv


def sig_errors(reg_path: Path) -> list[str]:
    return [f.message for f in verify_registry(reg_path).errors if f.check == "signature"]


def test_key_round_trip(signed: tuple[Path, Path]) -> None:
    reg_path, _ = signed
    r = verify_registry(reg_path)
    assert r.ok, [str(f) for f in r.findings]
    reg = read_registry(reg_path)
    for e in reg.entries:
        assert e["sigstore_bundle"] == f"{e['onnx']}.sigstore.json"
        assert any(f["role"] == "signature" for f in e["files"])
        verify_entry_signature(reg, e)
        doc = json.loads((reg_path.parent / e["sigstore_bundle"]).read_text())
        assert doc["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
        stmt = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
        assert {s["name"] for s in stmt["subject"]} == {e["onnx"], e["onnx"][:-5] + ".json"}
    assert "bundle:" in (reg_path.parent / "dists_vgg16.md").read_text()
    with pytest.warns(UserWarning):
        registry.load("dists_vgg16", reg_path)


def test_changed_file_even_after_repin(signed: tuple[Path, Path]) -> None:
    reg_path, _ = signed
    side = reg_path.parent / "dists_vgg16.json"
    side.write_text(side.read_text().replace('"smoke": true', '"smoke": true, "x": 1'))
    assert any("changed since it was signed" in m for m in sig_errors(reg_path))
    # an attacker swaps the model for another valid graph and rewrites the pins too
    shutil.copy(reg_path.parent / "lpips_vgg16.onnx", reg_path.parent / "dists_vgg16.onnx")
    pin(reg_path, "dists_vgg16")
    assert any("dists_vgg16.onnx changed since it was signed" in m for m in sig_errors(reg_path))
    with pytest.raises(SignatureError):
        registry.load("dists_vgg16", reg_path)


def test_swapped_bundle(signed: tuple[Path, Path]) -> None:
    reg_path, _ = signed
    root = reg_path.parent
    shutil.copy(root / "lpips_vgg16.onnx.sigstore.json", root / "dists_vgg16.onnx.sigstore.json")
    pin(reg_path, "dists_vgg16")
    assert any("signs entry 'lpips_vgg16'" in m for m in sig_errors(reg_path))


def test_missing_bundle(signed: tuple[Path, Path]) -> None:
    reg_path, _ = signed
    (reg_path.parent / "dists_vgg16.onnx.sigstore.json").unlink()
    errs = verify_registry(reg_path).errors
    assert any(f.entry == "dists_vgg16" and f.check == "signature" and "missing" in f.message for f in errs)


def test_added_file(signed: tuple[Path, Path]) -> None:
    reg_path, _ = signed
    (reg_path.parent / "calib.npz").write_bytes(b"calibration")
    with transaction(reg_path) as reg:
        reg.get("dists_vgg16")["quant_calibration_set"] = "calib.npz"
    pin(reg_path, "dists_vgg16")
    assert any("does not cover" in m and "calib.npz" in m for m in sig_errors(reg_path))


def test_other_key(signed: tuple[Path, Path], tmp_path: Path) -> None:
    reg_path, _ = signed
    other_priv, other_pub = keypair(tmp_path, "other")
    with pytest.raises(UsageError, match="does not match the public key"):
        sign_entries(reg_path, "dists_vgg16", key=other_priv)
    from registry.signing._methods import ec_key
    from registry.signing.statement import build_statement

    e = read_registry(reg_path).get("dists_vgg16")
    forged = ec_key.sign(build_statement(read_registry(reg_path), e), ec_key.load_private_key(other_priv))
    (reg_path.parent / e["sigstore_bundle"]).write_bytes(forged)
    pin(reg_path, "dists_vgg16")
    assert any("does not verify with any of the 1 key(s)" in m for m in sig_errors(reg_path))
    set_policy(reg_path, public_key=other_pub)  # a changed policy invalidates the old signatures
    assert any(f.entry == "lpips_vgg16" for f in verify_registry(reg_path).errors)


def test_forged_signature_bytes(signed: tuple[Path, Path]) -> None:
    reg_path, _ = signed
    b = reg_path.parent / "dists_vgg16.onnx.sigstore.json"
    doc = json.loads(b.read_text())
    sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 1
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    b.write_text(json.dumps(doc))
    pin(reg_path, "dists_vgg16")
    assert any("does not verify" in m for m in sig_errors(reg_path))


def test_stale_pins_block_signing(signed: tuple[Path, Path]) -> None:
    reg_path, priv = signed
    side = reg_path.parent / "dists_vgg16.json"
    side.write_text(side.read_text() + " ")
    with pytest.raises(UsageError, match="tinyreg pin dists_vgg16"):
        sign_entries(reg_path, "dists_vgg16", key=priv)


def test_keyless_policy_rejects_key_bundle_and_needs_token(signed: tuple[Path, Path]) -> None:
    _fixture_bundles()
    reg_path, _ = signed
    set_policy(reg_path, identity="someone@example.com", issuer=GHO, trusted_root=SIGSTORE / "trusted_root.staging.json")
    assert sig_errors(reg_path)
    with pytest.raises(UsageError, match="identity token"):
        sign_entries(reg_path, "dists_vgg16", identity_token="")


def _fixture_bundles() -> None:
    require_fixture(SIGSTORE)


@pytest.mark.parametrize(("artifact", "bundle", "instance", "identity", "issuer"), FIXTURES)
def test_real_bundles_verify_offline(artifact: str | None, bundle: str, instance: str, identity: str, issuer: str) -> None:
    _fixture_bundles()
    root = SIGSTORE / f"trusted_root.{instance}.json"
    res = verify_bundle(SIGSTORE / bundle, artifact=SIGSTORE / artifact if artifact else None, identity=identity, issuer=issuer,
                        trusted_root=root)
    assert res["ok"]
    if artifact is None:
        assert res["subjects"] == ["a.txt"]


@pytest.mark.parametrize(("artifact", "bundle", "instance", "identity", "issuer"), FIXTURES)
def test_real_bundles_fail_when_tampered(
    tmp_path: Path, artifact: str | None, bundle: str, instance: str, identity: str, issuer: str
) -> None:
    _fixture_bundles()
    root = SIGSTORE / f"trusted_root.{instance}.json"
    other_root = SIGSTORE / f"trusted_root.{'staging' if instance == 'production' else 'production'}.json"
    art = SIGSTORE / artifact if artifact else None
    b = SIGSTORE / bundle

    def fails(**kw: object) -> None:
        which = kw.pop("bundle", b)
        args: dict[str, object] = {"artifact": art, "identity": identity, "issuer": issuer, "trusted_root": root}
        args.update(kw)
        with pytest.raises(IntegrityError):
            verify_bundle(which, **args)  # type: ignore[arg-type]

    fails(identity=identity + "x")
    fails(identity="https://github.com/evil/repo/.github/workflows/release.yml@refs/tags/v0.1.2")
    fails(issuer="https://accounts.google.com")
    fails(trusted_root=other_root)
    if art is not None:
        flipped = tmp_path / "artifact"
        data = bytearray(art.read_bytes())
        data[len(data) // 2] ^= 1
        flipped.write_bytes(bytes(data))
        fails(artifact=flipped)
    doc = json.loads(b.read_text())
    if "dsseEnvelope" in doc:
        payload = bytearray(base64.b64decode(doc["dsseEnvelope"]["payload"]))
        payload[20] ^= 1
        doc["dsseEnvelope"]["payload"] = base64.b64encode(bytes(payload)).decode()
    else:
        sig = bytearray(base64.b64decode(doc["messageSignature"]["signature"]))
        sig[-1] ^= 1
        doc["messageSignature"]["signature"] = base64.b64encode(bytes(sig)).decode()
    tampered = tmp_path / "tampered.sigstore.json"
    tampered.write_text(json.dumps(doc))
    fails(bundle=tampered)


def test_keyless_entry_path_checks_statement(reg_path: Path, tmp_path: Path) -> None:
    """A genuine keyless bundle with the right identity still fails: it does not sign this entry's files."""
    _fixture_bundles()
    _, _, _, identity, issuer = FIXTURES[3]
    set_policy(reg_path, identity=identity, issuer=issuer, trusted_root=SIGSTORE / "trusted_root.staging.json")
    shutil.copy(SIGSTORE / FIXTURES[3][1], reg_path.parent / "dists_vgg16.onnx.sigstore.json")
    with transaction(reg_path) as reg:
        reg.get("dists_vgg16")["sigstore_bundle"] = "dists_vgg16.onnx.sigstore.json"
    pin(reg_path, "dists_vgg16")
    msgs = sig_errors(reg_path)
    assert any("not a tinyreg registry-entry statement" in m for m in msgs), msgs
    set_policy(reg_path, identity="someone-else@example.com", issuer=issuer, trusted_root=SIGSTORE / "trusted_root.staging.json")
    assert any("Sigstore verification failed" in m for m in sig_errors(reg_path))


@pytest.mark.slow
def test_cli_verify_bundle(tmp_path: Path) -> None:
    _fixture_bundles()
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    a, b, inst, ident, iss = FIXTURES[1]
    base = [sys.executable, "-m", "registry", "verify-bundle", str(SIGSTORE / a), "--bundle", str(SIGSTORE / b),
            "--issuer", iss, "--trusted-root", str(SIGSTORE / f"trusted_root.{inst}.json")]
    ok = subprocess.run([*base, "--identity", ident], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stderr
    bad = subprocess.run([*base, "--identity", "mallory@example.com"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
