"""OpenSSF Model Signing bundles of a single file (resource ".") verify with verify-bundle FILE (issue 16 item 9)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from registry.errors import SignatureError
from registry.signing.verify import verify_bundle
from tests.factories import keypair

REPO = Path(__file__).resolve().parents[2]
MODEL_SIGNING = Path(sys.executable).parent / "model_signing"  # the dev extra's reference signer (model-signing 1.1)


@pytest.fixture
def signed_file(tmp_path: Path, reg_path: Path) -> tuple[Path, Path, Path]:
    if not MODEL_SIGNING.exists():
        pytest.fail(f"{MODEL_SIGNING} is missing: the dev extra installs model-signing")
    priv, pub = keypair(tmp_path, "k")
    model = tmp_path / "work" / "model.onnx"
    model.parent.mkdir()
    shutil.copyfile(reg_path.parent / "dists_vgg16.onnx", model)
    sig = tmp_path / "model.sig"
    p = subprocess.run([str(MODEL_SIGNING), "sign", "key", str(model), "--private_key", str(priv), "--signature", str(sig)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return model, sig, pub


@pytest.mark.slow
def test_single_file_bundle_verifies(signed_file: tuple[Path, Path, Path]) -> None:
    model, sig, pub = signed_file
    res = verify_bundle(sig, artifact=model, key=pub)
    assert res["ok"] and res["subjects"] == ["model.onnx"] and res["format"] == "openssf-model-signing-v1.0"
    p = subprocess.run([sys.executable, "-m", "registry", "verify-bundle", str(model), "--bundle", str(sig), "--key", str(pub)],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0, p.stderr


def test_single_file_bundle_refuses_changed_bytes_and_other_keys(signed_file: tuple[Path, Path, Path], tmp_path: Path) -> None:
    model, sig, pub = signed_file
    other = tmp_path / "other.onnx"
    other.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(SignatureError, match="is not the signed digest"):
        verify_bundle(sig, artifact=other, key=pub)
    _, pub2 = keypair(tmp_path, "k2")
    with pytest.raises(SignatureError):
        verify_bundle(sig, artifact=model, key=pub2)


@pytest.mark.slow
def test_folder_bundle_is_not_accepted_for_one_of_its_files(signed_file: tuple[Path, Path, Path], tmp_path: Path) -> None:
    model, _, pub = signed_file
    priv = tmp_path / "k.pem"
    (model.parent / "extra.txt").write_text("x")
    sig = tmp_path / "folder.sig"
    p = subprocess.run([str(MODEL_SIGNING), "sign", "key", str(model.parent), "--private_key", str(priv), "--signature", str(sig)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    with pytest.raises(SignatureError, match="signs a folder"):
        verify_bundle(sig, artifact=model, key=pub)
    assert verify_bundle(sig, artifact=model.parent, key=pub)["ok"]
