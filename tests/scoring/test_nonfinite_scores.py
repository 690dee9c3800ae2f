"""A model that gives NaN or inf at scoring time (an fp16 sibling overflowing on a user's image, a broken
graph): never printed as a score or as JSON's invalid ``NaN`` with exit 0 (attack on issue 18)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from registry.errors import CheckFailed
from registry.scoring.score import score_images, score_videos
from tests.conftest import REPO
from tests.video_factory import write_y4m_planes, yuv_frames

TINY = REPO / "model" / "tiny" / "registry.json"


def images(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for p in (a, b):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(p)
    return a, b


@pytest.fixture
def overflowing(monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.runtime.binding as binding

    calls = iter([1.0, float("inf"), float("nan")] + [0.5] * 100)
    monkeypatch.setattr(binding, "runner_for", lambda session, provider: lambda feeds: next(calls))


def test_image_pair_nan_is_a_failed_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.runtime.binding as binding

    monkeypatch.setattr(binding, "runner_for", lambda session, provider: lambda feeds: float("nan"))
    a, b = images(tmp_path)
    with pytest.raises(CheckFailed, match=r"non-finite score \(nan\) for the image pair"):
        score_images("ssim_luma", a, b, registry=TINY)


@pytest.mark.usefixtures("overflowing")
def test_video_frame_inf_names_the_frame(tmp_path: Path) -> None:
    for name in ("r.y4m", "d.y4m"):
        write_y4m_planes(tmp_path / name, yuv_frames(3, 32, 32, "yuv420p"), "yuv420p")
    with pytest.raises(CheckFailed, match=r"non-finite score \(inf\) for frame 1"):
        score_videos("ssim_luma", tmp_path / "r.y4m", tmp_path / "d.y4m", registry=TINY)


def test_cli_json_never_carries_nan(tmp_path: Path) -> None:
    a, b = images(tmp_path)
    script = ("import sys, registry.runtime.binding as b\n"
              "b.runner_for = lambda s, p: (lambda feeds: float('nan'))\n"
              "from registry.cli import main\nsys.argv = ['tinyreg', *sys.argv[1:]]\nmain()\n")
    p = subprocess.run([sys.executable, "-c", script, "score", "ssim_luma", str(a), str(b), "--json", "--registry", str(TINY)],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 1 and "NaN" not in p.stdout and '"ok": false' in p.stdout, (p.returncode, p.stdout, p.stderr)
