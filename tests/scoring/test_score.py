from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from registry.errors import InputError, UsageError
from registry.media.y4m import write_y4m
from registry.scoring.score import score_images, score_videos
from tests.factories import png

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path, Path]:
    from registry.media.images import distort, natural_image, resize

    ref = resize(natural_image("chelsea"), 48, 64)
    dist = distort(ref, "blur", 0.8, np.random.default_rng(0))
    small = resize(ref, 40, 64)
    return png(tmp_path / "ref.png", ref), png(tmp_path / "dist.png", dist), png(tmp_path / "small.png", small)


def test_score_images(reg_path: Path, images: tuple[Path, Path, Path]) -> None:
    ref, dist, _ = images
    same = score_images("dists_vgg16", ref, ref, registry=reg_path)
    diff = score_images("dists_vgg16", ref, dist, registry=reg_path)
    assert same.smoke and abs(same.scores[0]) < 1e-6
    assert diff.scores[0] > same.scores[0]
    assert diff.as_json()["score"] == diff.scores[0]


def test_bad_image_inputs(reg_path: Path, images: tuple[Path, Path, Path], tmp_path: Path) -> None:
    ref, _, small = images
    with pytest.raises(InputError, match="differ in size"):
        score_images("dists_vgg16", ref, small, registry=reg_path)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(InputError, match="not a readable image"):
        score_images("dists_vgg16", ref, junk, registry=reg_path)
    with pytest.raises(InputError, match="no such file"):
        score_images("dists_vgg16", ref, tmp_path / "none.png", registry=reg_path)
    with pytest.raises(UsageError, match="no entry 'nope'"):
        score_images("nope", ref, ref, registry=reg_path)


def test_score_videos(reg_path: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frames = [rng.random((32, 40, 3), dtype=np.float32) for _ in range(4)]
    noisy = [np.clip(f + rng.normal(0, 0.1 * i, f.shape), 0, 1).astype(np.float32) for i, f in enumerate(frames)]
    a, b = tmp_path / "a.y4m", tmp_path / "b.y4m"
    write_y4m(a, frames)
    write_y4m(b, noisy)
    seen: list[int] = []
    res = score_videos("dists_vgg16", a, b, registry=reg_path, progress=lambda d, t: seen.append(d))
    assert len(res.scores) == 4 and seen == [1, 2, 3, 4]
    assert abs(res.scores[0]) < 1e-6 and res.scores[3] > res.scores[1]
    assert res.csv().splitlines()[0] == "frame,score" and len(res.csv().splitlines()) == 5
    c = tmp_path / "c.y4m"
    write_y4m(c, frames[:3])
    with pytest.raises(InputError, match=r"has 4 frames but .*c\.y4m has 3"):
        score_videos("dists_vgg16", a, c, registry=reg_path)


@pytest.mark.slow  # four fresh interpreters scoring (the warning itself: tests/runtime/test_loader.py)
def test_cli_score_warns_on_smoke(reg_path: Path, images: tuple[Path, Path, Path], tmp_path: Path) -> None:
    ref, dist, small = images
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", str(ref), str(dist), "--registry", str(reg_path)],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "SMOKE PLACEHOLDER" in p.stderr
    # a line for people by default (issue 20): metric, score, direction, precision, entry and the placeholder warning
    assert re.fullmatch(r"DISTS \(VGG-16\): [0-9.e-]+ \(lower is better \u2193\), fp32, entry dists_vgg16 -- SMOKE PLACEHOLDER: "
                        r"random weights, the score means nothing\n", p.stdout), p.stdout
    p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", str(ref), str(dist), "--registry", str(reg_path),
                        "--json"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "SMOKE PLACEHOLDER" in p.stderr
    assert json.loads(p.stdout)["smoke"] is True
    p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", str(ref), str(small), "--registry", str(reg_path)],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "differ in size" in p.stderr and "Traceback" not in p.stderr
    a = tmp_path / "a.y4m"
    write_y4m(a, [np.full((20, 20, 3), 0.5, np.float32) + np.eye(20, dtype=np.float32)[..., None] * 0.2] * 2)
    p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", "--ref", str(a), "--dist", str(a), "--format", "csv",
                        "--registry", str(reg_path)], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "frame,score" and len(p.stdout.splitlines()) == 3


def _three_frames(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    rng = np.random.default_rng(2)
    frames = [rng.random((24, 24, 3), dtype=np.float32) for _ in range(3)]
    a = tmp_path / "ref.y4m"
    write_y4m(a, frames)
    return a, frames


def test_zero_frame_pair_refused(reg_path: Path, tmp_path: Path) -> None:
    z1, z2 = tmp_path / "z1.y4m", tmp_path / "z2.y4m"
    for z in (z1, z2):
        z.write_bytes(b"YUV4MPEG2 W24 H24 F25:1 C444\n")
    with pytest.raises(InputError, match=r"z1\.y4m: no frames"):
        score_videos("dists_vgg16", z1, z2, registry=reg_path)
    a, _ = _three_frames(tmp_path)
    with pytest.raises(InputError, match=r"z2\.y4m: no frames"):
        score_videos("dists_vgg16", a, z2, registry=reg_path)


@pytest.mark.parametrize("which", ["ref", "dist"])
def test_truncated_last_frame_of_either_file_refused(reg_path: Path, tmp_path: Path, which: str) -> None:
    a, frames = _three_frames(tmp_path)
    b = tmp_path / "dist.y4m"
    write_y4m(b, frames)
    victim = a if which == "ref" else b
    victim.write_bytes(victim.read_bytes() + b"FRAME\n" + b"\x80" * 100)  # a partial fourth frame
    with pytest.raises(InputError, match=rf"{victim.name}: frame 3 is truncated"):
        score_videos("dists_vgg16", a, b, registry=reg_path)


def test_video_size_and_count_name_the_files(reg_path: Path, tmp_path: Path) -> None:
    a, frames = _three_frames(tmp_path)
    b = tmp_path / "short.y4m"
    write_y4m(b, frames[:2])
    with pytest.raises(InputError, match=r"ref\.y4m has 3 frames but .*short\.y4m has 2"):
        score_videos("dists_vgg16", a, b, registry=reg_path)
    c = tmp_path / "small.y4m"
    write_y4m(c, [f[:20] for f in frames])
    with pytest.raises(InputError, match=r"ref\.y4m is 24x24 but .*small\.y4m is 24x20"):
        score_videos("dists_vgg16", a, c, registry=reg_path)
    with pytest.raises(InputError, match="over the cap"):
        score_videos("dists_vgg16", a, a, registry=reg_path, max_pixels=500)
    with pytest.raises(InputError, match="over the limit"):
        score_videos("dists_vgg16", a, a, registry=reg_path, max_memory=1 << 20)


def test_cli_bad_videos_one_line(reg_path: Path, tmp_path: Path) -> None:
    z = tmp_path / "empty.y4m"
    z.write_bytes(b"YUV4MPEG2 W24 H24 F25:1 C444\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", "--ref", str(z), "--dist", str(z),
                        "--registry", str(reg_path)], capture_output=True, text=True, env=env)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines() == [f"tinyreg: {z}: no frames"]
