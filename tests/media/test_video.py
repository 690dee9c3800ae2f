"""Real video through PyAV: the same Y'CbCr frames give the same RGB and scores as Y4M; alignment and mismatches."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from registry.errors import InputError, UsageError
from registry.media.resize import resize_rgb
from registry.media.video import Scale, Selection, aligned_frames, open_video
from registry.scoring.score import score_videos
from tests.video_factory import encode, write_y4m_planes, yuv_frames


def rgb_frames(path: Path, matrix: str = "auto") -> list[np.ndarray]:
    with open_video(path, matrix) as v:
        return [f() for f in v.frames()]


@pytest.mark.parametrize(("pix_fmt", "codec", "suffix", "options"), [
    ("yuv420p", "libx264", ".mp4", {"qp": "0"}),  # lossless H.264
    ("yuv420p10le", "libx264", ".mkv", {"qp": "0"}),
    ("yuv420p", "ffv1", ".mkv", {}),
    ("yuv420p10le", "ffv1", ".mkv", {}),
    ("yuv422p10le", "ffv1", ".mkv", {}),
    ("yuv444p", "ffv1", ".mkv", {}),
])
def test_container_equals_y4m(tmp_path: Path, pix_fmt: str, codec: str, suffix: str, options: dict[str, str]) -> None:
    planes = yuv_frames(3, 34, 18, pix_fmt)  # odd chroma width: 17
    video, y4m = tmp_path / f"a{suffix}", tmp_path / "a.y4m"
    encode(video, planes, pix_fmt, codec, options=options)
    write_y4m_planes(y4m, planes, pix_fmt)
    a, b = rgb_frames(video), rgb_frames(y4m)
    assert len(a) == len(b) == 3
    for x, y in zip(a, b, strict=True):
        assert x.shape == (18, 34, 3) and x.dtype == np.float32
        np.testing.assert_array_equal(x, y)
    # a matrix given by hand overrides the size rule in both
    np.testing.assert_array_equal(rgb_frames(video, "bt709")[1], rgb_frames(y4m, "bt709")[1])
    assert not np.array_equal(rgb_frames(video, "bt709")[1], a[1])


def test_container_scores_equal_y4m(reg_path: Path, tmp_path: Path) -> None:
    ref, dist = yuv_frames(4, 48, 32, "yuv420p10le", seed=1), yuv_frames(4, 48, 32, "yuv420p10le", seed=2)
    for name, planes in (("r", ref), ("d", dist)):
        encode(tmp_path / f"{name}.mkv", planes, "yuv420p10le", "ffv1")
        write_y4m_planes(tmp_path / f"{name}.y4m", planes, "yuv420p10le")
    s_mkv = score_videos("dists_vgg16", tmp_path / "r.mkv", tmp_path / "d.mkv", registry=reg_path).scores
    s_y4m = score_videos("dists_vgg16", tmp_path / "r.y4m", tmp_path / "d.y4m", registry=reg_path).scores
    assert len(s_mkv) == 4 and s_mkv == s_y4m
    assert all(s > 0 for s in s_mkv)


def test_stream_colour_tags_are_used(tmp_path: Path) -> None:
    """A BT.709 full-range tagged stream converts with BT.709 / full range, whatever its size."""
    planes = yuv_frames(2, 32, 24, "yuv420p", full_range=True)
    tagged, y4m = tmp_path / "t.mkv", tmp_path / "t.y4m"
    encode(tagged, planes, "yuv420p", "ffv1", colorspace=1, full_range=True)
    with av.open(str(tagged)) as c:
        f = next(c.decode(video=0))
        assert (int(f.colorspace), int(f.color_range)) == (1, 2)
    write_y4m_planes(y4m, planes, "yuv420p", full_range=True)
    got = rgb_frames(tagged)
    np.testing.assert_array_equal(got[0], rgb_frames(y4m, "bt709")[0])
    assert not np.array_equal(got[0], rgb_frames(y4m, "bt601")[0])  # 24 lines: untagged would be BT.601
    limited = tmp_path / "l.mkv"
    encode(limited, planes, "yuv420p", "ffv1", colorspace=6)
    write_y4m_planes(y4m, planes, "yuv420p")
    np.testing.assert_array_equal(rgb_frames(limited)[1], rgb_frames(y4m, "bt601")[1])


def test_selection_start_every_frames(tmp_path: Path) -> None:
    planes = yuv_frames(10, 32, 16, "yuv420p")
    encode(tmp_path / "a.mkv", planes, "yuv420p")
    write_y4m_planes(tmp_path / "b.y4m", planes, "yuv420p")
    with open_video(tmp_path / "a.mkv") as a, open_video(tmp_path / "b.y4m") as b:
        got = list(aligned_frames(a, b, Selection(start=1, count=3, every=3)))
    assert [i for i, _, _ in got] == [1, 4, 7]
    for _, x, y in got:
        np.testing.assert_array_equal(x, y)
    assert Selection(2, None, 3).expected(10) == 3 and Selection(0, 2, 1).expected(10) == 2 and Selection(0, 5).expected(None) == 5
    with pytest.raises(UsageError):
        Selection(every=0)
    with open_video(tmp_path / "a.mkv") as a, open_video(tmp_path / "b.y4m") as b, pytest.raises(InputError, match="past the end"):
        list(aligned_frames(a, b, Selection(start=12)))


def test_length_and_size_mismatch_name_both_files(tmp_path: Path) -> None:
    planes = yuv_frames(4, 32, 16, "yuv420p")
    encode(tmp_path / "four.mkv", planes, "yuv420p")
    encode(tmp_path / "three.mkv", planes[:3], "yuv420p")
    with open_video(tmp_path / "four.mkv") as a, open_video(tmp_path / "three.mkv") as b, \
            pytest.raises(InputError, match=r"three\.mkv ends after 3 frames but .*four\.mkv goes on"):
        list(aligned_frames(a, b, Selection()))
    # --frames within both lengths is fine
    with open_video(tmp_path / "four.mkv") as a, open_video(tmp_path / "three.mkv") as b:
        assert len(list(aligned_frames(a, b, Selection(count=3)))) == 3
    big = yuv_frames(4, 64, 32, "yuv420p")
    encode(tmp_path / "big.mkv", big, "yuv420p")
    with open_video(tmp_path / "four.mkv") as a, open_video(tmp_path / "big.mkv") as b, \
            pytest.raises(InputError, match=r"four\.mkv is 32x16 but .*big\.mkv is 64x32"):
        list(aligned_frames(a, b, Selection()))
    with open_video(tmp_path / "four.mkv") as a, open_video(tmp_path / "big.mkv") as b:
        got = list(aligned_frames(a, b, Selection(), Scale.parse("ref")))
    assert len(got) == 4 and got[0][2].shape == (16, 32, 3)
    with open_video(tmp_path / "four.mkv") as a, open_video(tmp_path / "big.mkv") as b:
        got = list(aligned_frames(a, b, Selection(count=1), Scale.parse("48x20")))
    assert got[0][1].shape == got[0][2].shape == (20, 48, 3)
    with pytest.raises(UsageError):
        Scale.parse("tiny")


def test_corrupt_and_missing_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        open_video(tmp_path / "nope.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(InputError, match=r"bad\.mp4"), open_video(bad) as v:
        list(v.frames())
    planes = yuv_frames(6, 64, 48, "yuv420p")
    good = tmp_path / "good.mp4"
    encode(good, planes, "yuv420p", "libx264", options={"qp": "0"})
    data = bytearray(good.read_bytes())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(bytes(data[: len(data) // 2]))  # moov at the end: the header is gone
    with pytest.raises(InputError, match=r"cut\.mp4"), open_video(cut) as v:
        list(v.frames())


def test_resize_rgb() -> None:
    flat = np.full((30, 40, 3), 0.25, np.float32)
    np.testing.assert_allclose(resize_rgb(flat, 17, 23), 0.25, atol=1e-6)
    ramp = np.repeat(np.linspace(0, 1, 64, dtype=np.float32)[None, :, None], 8, axis=0).repeat(3, axis=2)
    up = resize_rgb(ramp, 8, 128)
    assert up.shape == (8, 128, 3) and np.all(np.diff(up[0, 2:-2, 0]) >= -1e-6)
    assert resize_rgb(ramp, 8, 64) is ramp


def test_pixel_cap_applies_to_every_kind_of_input(tmp_path: Path) -> None:
    planes = yuv_frames(2, 64, 32, "yuv420p")
    encode(tmp_path / "a.mkv", planes, "yuv420p")
    write_y4m_planes(tmp_path / "a.y4m", planes, "yuv420p")
    for name in ("a.mkv", "a.y4m"):
        with pytest.raises(InputError, match=rf"{name}: 64x32 is 0\.0 Mpx, over the cap"):
            open_video(tmp_path / name, max_pixels=2047)
        with open_video(tmp_path / name, max_pixels=2048) as v:
            assert (v.info.width, v.info.height) == (64, 32)
