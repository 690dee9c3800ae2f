from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InputError
from registry.media.y4m import Y4MReader, parse_header, write_y4m


def test_round_trip_444(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.random((18, 22, 3), dtype=np.float32) * 0.8 + 0.1 for _ in range(3)]
    p = tmp_path / "a.y4m"
    write_y4m(p, frames)
    with Y4MReader(p, "bt601") as r:
        assert r.frame_count == 3
        out = list(r.frames())
    assert len(out) == 3
    for a, b in zip(frames, out, strict=True):
        assert np.max(np.abs(a - b)) < 0.02  # 8-bit limited range quantisation


def test_420_and_10bit(tmp_path: Path) -> None:
    w, h = 6, 4
    y = np.full((h, w), 512, np.uint16)
    c = np.full((h // 2, w // 2), 512, np.uint16)
    p = tmp_path / "b.y4m"
    p.write_bytes(f"YUV4MPEG2 W{w} H{h} F30:1 C420p10 XCOLORRANGE=LIMITED\n".encode() + b"FRAME\n" + y.tobytes() + c.tobytes() * 2)
    with Y4MReader(p) as r:
        assert r.header.bit_depth == 10 and r.header.chroma == "420"
        f = next(r.frames())
    assert f.shape == (h, w, 3)
    assert np.allclose(f, (512 - 64) / 876, atol=1e-6)


def test_truncated_frame(tmp_path: Path) -> None:
    p = tmp_path / "t.y4m"
    write_y4m(p, [np.zeros((8, 8, 3), np.float32)] * 2)
    p.write_bytes(p.read_bytes()[:-5])
    with Y4MReader(p) as r, pytest.raises(InputError, match="truncated"):
        list(r.frames())


@pytest.mark.parametrize("line", [b"RIFF", b"YUV4MPEG2 W0 H10", b"YUV4MPEG2 Wx H2", b"YUV4MPEG2 W4 H4 C411", b"YUV4MPEG2 W4 H4 C420p9"])
def test_bad_headers(line: bytes) -> None:
    with pytest.raises(InputError):
        parse_header(line, "x")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_header_parser_total(data: bytes) -> None:
    line = data.split(b"\n")[0]
    try:
        h = parse_header(line, "fuzz")
    except InputError:
        return
    assert h.width > 0 and h.height > 0 and h.frame_bytes > 0


@settings(max_examples=100, deadline=None)
@given(w=st.integers(1, 64), h=st.integers(1, 64), c=st.sampled_from(["420jpeg", "420", "422", "444", "mono", "420p10"]))
def test_header_fields(w: int, h: int, c: str) -> None:
    hdr = parse_header(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C{c}".encode(), "x")
    assert (hdr.width, hdr.height) == (w, h)
    bps = 2 if c.endswith("p10") else 1
    luma = w * h
    chroma = {"420jpeg": 2 * (-(-w // 2)) * (-(-h // 2)), "420": 2 * (-(-w // 2)) * (-(-h // 2)), "420p10": 2 * (-(-w // 2)) * (-(-h // 2)),
              "422": 2 * (-(-w // 2)) * h, "444": 2 * w * h, "mono": 0}[c]
    assert hdr.frame_bytes == (luma + chroma) * bps
