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
    with pytest.raises(InputError, match=r"t\.y4m: frame 1 is truncated \(187 of 192 bytes\)"):
        Y4MReader(p)


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


def test_truncated_last_frame_refused_on_open(tmp_path: Path) -> None:
    """Indexing finds a short last frame before anything is decoded, naming the file."""
    p = tmp_path / "t.y4m"
    write_y4m(p, [np.zeros((8, 8, 3), np.float32)] * 3)
    p.write_bytes(p.read_bytes() + b"FRAME\n" + b"\x10" * 50)  # a fourth frame of 50 of 192 bytes
    with pytest.raises(InputError, match=r"t\.y4m: frame 3 is truncated \(50 of 192 bytes\)"):
        Y4MReader(p)


def test_frame_marker_and_parameters(tmp_path: Path) -> None:
    p = tmp_path / "m.y4m"
    write_y4m(p, [np.zeros((8, 8, 3), np.float32)] * 2)
    data = p.read_bytes()
    p.write_bytes(data.replace(b"FRAME\n", b"FRAME Ixyz\n"))  # frame parameters are allowed
    with Y4MReader(p) as r:
        assert r.frame_count == 2 and len(list(r.frames())) == 2
    p.write_bytes(data + b"JUNK\n")
    with pytest.raises(InputError, match=r"m\.y4m: frame 2: missing FRAME marker"):
        Y4MReader(p)
    p.write_bytes(data + b"FRA")
    with pytest.raises(InputError, match=r"m\.y4m: frame 2 marker line too long or truncated"):
        Y4MReader(p)


def test_zero_frames_counted(tmp_path: Path) -> None:
    p = tmp_path / "z.y4m"
    p.write_bytes(b"YUV4MPEG2 W8 H8 F25:1 C444\n")
    with Y4MReader(p) as r:
        assert r.frame_count == 0 and list(r.frames()) == []


@pytest.mark.parametrize(("line", "match"), [
    (b"YUV4MPEG2 W16384 H16384 C420", "over the cap"),  # 268 Mpx a frame
    (b"YUV4MPEG2 W16384 H3000 C444p16", "over the cap"),  # 49 Mpx
    (b"YUV4MPEG2 W99999 H2", "bad frame size"),
])
def test_absurd_dimensions_refused(tmp_path: Path, line: bytes, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_header(line, "x.y4m")
    p = tmp_path / "big.y4m"
    p.write_bytes(line + b"\nFRAME\n" + b"\x00" * 16)
    with pytest.raises(InputError, match=r"big\.y4m: .*" + match):
        Y4MReader(p)


def test_frame_bytes_cap_is_independent_of_pixel_cap() -> None:
    from registry.media.y4m import MAX_FRAME_BYTES

    with pytest.raises(InputError, match=f"over the cap of {MAX_FRAME_BYTES} bytes"):
        parse_header(b"YUV4MPEG2 W16384 H3000 C444p16", "x", max_pixels=None)  # 295 MB frames
    hdr = parse_header(b"YUV4MPEG2 W7680 H4320 C420p10", "x")  # 8K 10-bit is fine
    assert hdr.frame_bytes <= MAX_FRAME_BYTES
