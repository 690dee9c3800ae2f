"""score honours every option in every mode or refuses it by name (issue 16 item 7), and checks every decoded frame (item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from registry.errors import InputError, UsageError
from registry.media.video import Scale, Selection
from registry.scoring.score import score_images, score_videos
from tests.factories import png
from tests.video_factory import growing_stream, write_y4m_planes, yuv_frames

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "model" / "tiny" / "registry.json"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry", "score", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"})


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    ref = rng.random((40, 48, 3)).astype(np.float32)
    return png(tmp_path / "r.png", ref), png(tmp_path / "d.png", np.clip(ref + rng.normal(0, 0.1, ref.shape), 0, 1))


@pytest.fixture
def videos(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.y4m", tmp_path / "b.y4m"
    write_y4m_planes(a, yuv_frames(6, 40, 32, "yuv420p", seed=1), "yuv420p")
    write_y4m_planes(b, yuv_frames(6, 40, 32, "yuv420p", seed=2), "yuv420p")
    return a, b


@pytest.mark.slow
def test_int8_on_an_image_pair_uses_the_gated_sibling(pair: tuple[Path, Path]) -> None:
    fp32 = score_images("dists_vgg16", *pair, registry=SHIPPED)
    int8 = score_images("dists_vgg16", *pair, int8=True, registry=SHIPPED)
    assert int8.int8 and int8.as_json()["int8"] is True
    assert fp32.scores[0] != int8.scores[0] and abs(fp32.scores[0] - int8.scores[0]) < 0.05
    p = cli("dists_vgg16", str(pair[0]), str(pair[1]), "--int8", "--registry", str(SHIPPED), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["score"] == pytest.approx(int8.scores[0], abs=1e-6)
    p = cli("dists_vgg16", str(pair[0]), str(pair[1]), "--int8", "--registry", str(SHIPPED))  # the line for people says int8
    assert p.returncode == 0 and ", int8, entry dists_vgg16" in p.stdout, p.stdout


def test_int8_without_a_sibling_is_refused(reg_path: Path, pair: tuple[Path, Path]) -> None:
    with pytest.raises(UsageError, match="has no int8 sibling"):
        score_images("dists_vgg16", *pair, int8=True, registry=reg_path)
    p = cli("dists_vgg16", str(pair[0]), str(pair[1]), "--int8", "--registry", str(reg_path))
    assert p.returncode == 2 and "no int8 sibling" in p.stderr and len(p.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_frame_selection_is_honoured_for_videos(reg_path: Path, videos: tuple[Path, Path]) -> None:
    full = score_videos("dists_vgg16", *videos, registry=reg_path)
    assert len(full.scores) == 6
    two = score_videos("dists_vgg16", *videos, selection=Selection(0, 2, 1), registry=reg_path)
    assert two.indices == [0, 1] and two.scores == pytest.approx(full.scores[:2], abs=1e-6)
    every = score_videos("dists_vgg16", *videos, selection=Selection(3, None, 2), registry=reg_path)
    assert every.indices == [3, 5] and every.scores == pytest.approx([full.scores[3], full.scores[5]], abs=1e-6)
    p = cli("dists_vgg16", "--ref", str(videos[0]), "--dist", str(videos[1]), "--every", "2", "--start", "3",
            "--registry", str(reg_path), "--json")
    assert p.returncode == 0, p.stderr
    assert [f["frame"] for f in json.loads(p.stdout)["frames"]] == [3, 5]
    p = cli("dists_vgg16", "--ref", str(videos[0]), "--dist", str(videos[1]), "--frames", "2", "--format", "csv",
            "--registry", str(reg_path))
    assert p.returncode == 0 and p.stdout.splitlines()[1:] == [f"{i},{s:.9g}" for i, s in enumerate(full.scores[:2])]


def test_scale_ref_is_honoured_for_videos(reg_path: Path, tmp_path: Path, videos: tuple[Path, Path]) -> None:
    big = tmp_path / "big.y4m"
    write_y4m_planes(big, yuv_frames(6, 80, 64, "yuv420p", seed=2), "yuv420p")
    with pytest.raises(InputError) as err:
        score_videos("dists_vgg16", videos[0], big, registry=reg_path)
    assert err.value.hint == "scale"
    res = score_videos("dists_vgg16", videos[0], big, scale=Scale.parse("ref"), registry=reg_path)
    assert len(res.scores) == 6
    p = cli("dists_vgg16", "--ref", str(videos[0]), "--dist", str(big), "--scale", "ref", "--registry", str(reg_path))
    assert p.returncode == 0, p.stderr


# every option x mode refusal runs in-process in tests/cli/test_option_matrix.py; two through the real CLI here
@pytest.mark.parametrize(("args", "flag", "where"), [
    (["--out", "x.jsonl"], "--out", "a dataset (--manifest)"),
    (["--every", "2"], "--every", "videos (--ref/--dist) and a dataset"),
])
def test_options_that_do_not_apply_to_an_image_pair_are_refused(reg_path: Path, pair: tuple[Path, Path], tmp_path: Path,
                                                                 args: list[str], flag: str, where: str) -> None:
    p = cli("dists_vgg16", str(pair[0]), str(pair[1]), *args, "--registry", str(reg_path))
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert f"{flag} applies to" in lines[0] and where in lines[0] and "image pair" in lines[0]
    assert not (tmp_path / "x.jsonl").exists() and not Path("x.jsonl").exists()


def test_dataset_refuses_image_arguments_and_video_options(reg_path: Path, pair: tuple[Path, Path], tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("r.png,d.png\n")
    p = cli("dists_vgg16", str(pair[0]), str(pair[1]), "--manifest", str(m), "--out", str(tmp_path / "o.jsonl"),
            "--registry", str(reg_path))
    assert p.returncode == 2 and "applies to an image pair" in p.stderr and "not to a dataset" in p.stderr, p.stderr
    p = cli("dists_vgg16", "--ref", str(pair[0]), "--manifest", str(m), "--out", str(tmp_path / "o.jsonl"),
            "--registry", str(reg_path))
    assert p.returncode == 2 and "--ref applies to videos" in p.stderr, p.stderr
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("codec", "ext"), [("libx264", "h264"), ("mjpeg", "mjpeg")])
def test_frames_growing_mid_stream_are_checked_against_the_cap(reg_path: Path, tmp_path: Path, codec: str, ext: str) -> None:
    pytest.importorskip("av", reason="PyAV (the 'video' extra) decodes H.264/MJPEG")
    a = growing_stream(tmp_path / f"a.{ext}", codec, [(64, 64), (200, 200)])
    b = growing_stream(tmp_path / f"b.{ext}", codec, [(64, 64), (200, 200)])
    with pytest.raises(InputError, match=r"frame 3: 200x200 is 0\.0 Mpx, over the cap") as err:
        score_videos("dists_vgg16", a, b, max_pixels=5000, registry=reg_path)
    assert err.value.hint == "max_pixels"
    p = cli("dists_vgg16", "--ref", str(a), "--dist", str(b), "--max-pixels", "5000", "--registry", str(reg_path))
    assert p.returncode == 2 and "frame 3: 200x200" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_growing_frames_meet_the_memory_estimate_before_conversion(reg_path: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("av", reason="PyAV (the 'video' extra) decodes H.264")
    import registry.media.video as video

    a = growing_stream(tmp_path / "a.h264", "libx264", [(64, 64), (200, 200)])
    converted: list[tuple[int, int]] = []
    real = video.frame_to_rgb

    def spy(frame: object, matrix: str = "auto") -> np.ndarray:
        converted.append((frame.height, frame.width))  # type: ignore[attr-defined]
        return real(frame, matrix)

    monkeypatch.setattr(video, "frame_to_rgb", spy)
    with pytest.raises(InputError, match="200x200"):
        # 64x64 fits the limit, 200x200 does not: refused before the first 200x200 frame is converted
        score_videos("dists_vgg16", a, a, max_pixels=None, max_memory=_memory_between(reg_path, 64, 200), registry=reg_path)
    assert (200, 200) not in converted and (64, 64) in converted


def _memory_between(reg: Path, small: int, big: int) -> int:
    from registry.scoring.score import Scorer

    s = Scorer(reg, "dists_vgg16")
    assert s.memory_model is not None
    lo, hi = s.memory_model.estimate(small, small), s.memory_model.estimate(big, big)
    assert lo < hi
    return (lo + hi) // 2
