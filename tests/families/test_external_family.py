"""A family installed as its own distribution (tinyreg.families entry point) works with no core edit.

The throwaway distribution lives in tests/data/external_family; it is built and installed offline
into a temporary folder (``pip install --target``), then used through the real CLI in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "tests" / "data" / "external_family"


@pytest.mark.slow  # installs a family and runs every command on it (~20 s)
def test_external_family_add_verify_parity_score(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(DIST, src)  # the build writes into its source folder: never into the repository
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--no-deps",
                          "--no-build-isolation", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "COLUMNS": "200"}

    def tinyreg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=300)

    assert "mse" in tinyreg("add", "--help").stdout
    reg = tmp_path / "reg"
    assert tinyreg("init", str(reg)).returncode == 0
    added = tinyreg("add", "mse", "--registry", str(reg), "--json")
    assert added.returncode == 0, added.stderr
    entry = json.loads(added.stdout)["entry"]
    assert entry["family"] == "mse" and entry["smoke"] is False and entry["input_conventions"]["normalisation"] == "none"
    verify = tinyreg("verify", "--registry", str(reg))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    parity = tinyreg("parity", "mse_rgb", "--registry", str(reg), "--json")
    assert parity.returncode == 0, parity.stderr
    assert json.loads(parity.stdout)["parity"]["passed"] is True

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (19, 23, 3), dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    scored = tinyreg("score", "mse_rgb", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--registry", str(reg), "--json")
    assert scored.returncode == 0, scored.stderr
    want = float(np.mean((a / 255.0 - b / 255.0) ** 2))
    assert abs(json.loads(scored.stdout)["score"] - want) < 1e-6
