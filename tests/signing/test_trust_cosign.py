"""libvmaf's path: ``cosign verify-blob-attestation`` on a key-mode entry bundle, fully offline (cosign 2.5).

cosign is a Go binary that no package registry reachable here ships, so this test runs
where ``cosign`` is on PATH and otherwise skips naming it (the one allowed skip).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from registry.signing._methods import PREDICATE_TYPE
from tests.conftest import SIGSTORE
from tests.factories import make_signed

COSIGN = shutil.which("cosign")


@pytest.mark.skipif(COSIGN is None, reason="cosign is not installed (no package registry reachable here ships it)")
def test_cosign_verifies_key_mode_entry_bundle_offline(tmp_path: Path) -> None:
    s = make_signed(tmp_path)
    assert COSIGN is not None

    def cosign(artifact: Path) -> subprocess.CompletedProcess[str]:
        # the exact command of docs/trust.md
        return subprocess.run(
            [COSIGN, "verify-blob-attestation", "--key", str(s.pub), "--bundle", str(s.root / "dists_vgg16.onnx.sigstore.json"),
             "--new-bundle-format", "--trusted-root", str(SIGSTORE / "trusted_root.production.json"),
             "--insecure-ignore-tlog=true", "--type", PREDICATE_TYPE, str(artifact)],
            capture_output=True, text=True, timeout=120,
        )

    ok = cosign(s.root / "dists_vgg16.onnx")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    other = tmp_path / "tampered.onnx"
    data = (s.root / "dists_vgg16.onnx").read_bytes()
    other.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert cosign(other).returncode != 0
