"""A small YUV4MPEG2 (.y4m) reader: 8- and 10/16-bit 4:2:0, 4:2:2, 4:4:4 and mono, to RGB [0, 1]."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from registry.errors import InputError
from registry.media.images import check_pixels
from registry.media.limits import DEFAULT_MAX_PIXELS

MAGIC = b"YUV4MPEG2"
MAX_SIDE = 16384
# One frame is read into memory at a time; no frame may be larger than this, whatever the
# pixel cap (4:4:4 at 16 bits is 6 bytes a pixel: 256 MiB is 44.7 Mpx of it).
MAX_FRAME_BYTES = 256 << 20
_FRAME_LINE_LIMIT = 4096
# (horizontal, vertical) chroma subsampling by colourspace tag
_SUBSAMPLING = {"420": (2, 2), "422": (2, 1), "444": (1, 1), "mono": (0, 0)}
# Kr, Kb of the RGB<->YCbCr matrices (bt2020: the non-constant-luminance one)
MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}


@dataclass(frozen=True)
class Y4MHeader:
    width: int
    height: int
    chroma: str  # 420 / 422 / 444 / mono
    bit_depth: int
    full_range: bool
    fps: str
    header_len: int

    @property
    def frame_bytes(self) -> int:
        bps = 1 if self.bit_depth <= 8 else 2
        luma = self.width * self.height
        sx, sy = _SUBSAMPLING[self.chroma]
        if sx == 0:
            return luma * bps
        cw, ch = -(-self.width // sx), -(-self.height // sy)
        return (luma + 2 * cw * ch) * bps


def parse_header(line: bytes, source: str, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Y4MHeader:
    if not line.startswith(MAGIC + b" ") and line != MAGIC:
        raise InputError(f"{source}: not a YUV4MPEG2 file")
    w = h = 0
    chroma, depth, full, fps = "420", 8, False, "25:1"
    for tok in line[len(MAGIC):].decode("ascii", "replace").split():
        tag, val = tok[0], tok[1:]
        try:
            if tag == "W":
                w = int(val)
            elif tag == "H":
                h = int(val)
            elif tag == "F":
                fps = val
            elif tag == "C":
                c = val.lower()
                if c.startswith("mono"):
                    chroma, depth = "mono", int(c[4:] or 8) if c[4:].isdigit() else 8
                else:
                    base = c[:3]
                    if base not in _SUBSAMPLING:
                        raise InputError(f"{source}: unsupported colourspace C{val}")
                    chroma = base
                    depth = int(c.split("p", 1)[1]) if "p" in c[3:] and c.split("p", 1)[1].isdigit() else 8
            elif tag == "X" and val.upper().startswith("COLORRANGE="):
                full = val.split("=", 1)[1].upper() == "FULL"
        except ValueError as exc:
            raise InputError(f"{source}: malformed header field {tok!r}") from exc
    if w <= 0 or h <= 0 or w > MAX_SIDE or h > MAX_SIDE:
        raise InputError(f"{source}: bad frame size {w}x{h} (each side 1..{MAX_SIDE})")
    if depth not in (8, 10, 12, 16):
        raise InputError(f"{source}: unsupported bit depth {depth}")
    check_pixels(w, h, max_pixels, source)
    hdr = Y4MHeader(w, h, chroma, depth, full, fps, len(line) + 1)
    if hdr.frame_bytes > MAX_FRAME_BYTES:
        raise InputError(f"{source}: frames of {hdr.frame_bytes} bytes are over the cap of {MAX_FRAME_BYTES} bytes")
    return hdr


def _read_line(fh: BinaryIO, source: object, what: str = "header", limit: int = _FRAME_LINE_LIMIT) -> bytes:
    line = fh.readline(limit)
    if line and not line.endswith(b"\n"):
        raise InputError(f"{source}: {what} line too long or truncated")
    return line[:-1] if line else b""


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, hdr: Y4MHeader, matrix: str) -> np.ndarray:
    return yuv_to_rgb(y, cb, cr, bit_depth=hdr.bit_depth, full_range=hdr.full_range, matrix=matrix)


def upsample_chroma(c: np.ndarray, sx: int, sy: int, h: int, w: int) -> np.ndarray:
    """A subsampled chroma plane to full size by sample repetition."""
    if sx == sy == 1:
        return c
    return np.repeat(np.repeat(c, sy, axis=0), sx, axis=1)[:h, :w]


def yuv_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, *, bit_depth: int, full_range: bool, matrix: str) -> np.ndarray:
    """Full-size Y'CbCr planes (integer code values as float) to HxWx3 float32 RGB in [0, 1].

    The one conversion of tinyreg: Y4M files and decoded container video both come here.
    """
    kr, kb = MATRICES[matrix]
    maxv = float((1 << bit_depth) - 1)
    scale = float(1 << (bit_depth - 8))
    if full_range:
        yf = y / maxv
        cbf = (cb - 128.0 * scale) / maxv
        crf = (cr - 128.0 * scale) / maxv
    else:
        yf = (y - 16.0 * scale) / (219.0 * scale)
        cbf = (cb - 128.0 * scale) / (224.0 * scale)
        crf = (cr - 128.0 * scale) / (224.0 * scale)
    kg = 1.0 - kr - kb
    r = yf + 2.0 * (1.0 - kr) * crf
    b = yf + 2.0 * (1.0 - kb) * cbf
    g = (yf - kr * r - kb * b) / kg
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 1.0).astype(np.float32)


class Y4MReader:
    """Iterate RGB frames (HxWx3 float32 in [0, 1]); chroma upsampled by sample repetition.

    Opening indexes the whole file (one FRAME line and one seek a frame), so
    ``frame_count`` is exact and a truncated or malformed frame anywhere is
    refused, naming the file, before a single frame is decoded.
    """

    def __init__(self, path: Path, matrix: str = "auto", *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self.path = path
        try:
            from registry._internal.safeio import open_fd

            self._fh: BinaryIO = os.fdopen(open_fd(path)[0], "rb")  # closed in close(); a FIFO or device is refused
        except FileNotFoundError as exc:
            raise InputError(f"{path}: no such file") from exc
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
        try:
            self.header = parse_header(_read_line(self._fh, path), str(path), max_pixels=max_pixels)
            if matrix == "auto":
                matrix = "bt709" if self.header.height >= 720 else "bt601"
            if matrix not in MATRICES:
                raise InputError(f"unknown matrix {matrix!r} ({', '.join(MATRICES)})")
            self.matrix = matrix
            self._offsets = self._index()
        except BaseException:
            self._fh.close()
            raise
        self.frame_count = len(self._offsets)

    def _index(self) -> list[int]:
        """Byte offset of every frame's data; InputError on a bad marker or a short frame."""
        fh, size, n = self._fh, os.fstat(self._fh.fileno()).st_size, self.header.frame_bytes
        offsets: list[int] = []
        pos = fh.tell()
        while pos < size:
            line = _read_line(fh, self.path, f"frame {len(offsets)} marker")
            if not line.startswith(b"FRAME"):
                raise InputError(f"{self.path}: frame {len(offsets)}: missing FRAME marker")
            start = fh.tell()
            if size - start < n:
                raise InputError(f"{self.path}: frame {len(offsets)} is truncated ({size - start} of {n} bytes)")
            offsets.append(start)
            pos = fh.seek(start + n)
        fh.seek(self.header.header_len)
        return offsets

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Y4MReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frames(self) -> Iterator[np.ndarray]:
        for rgb, _ in self.frames_with_luma():
            yield rgb

    def frames_with_luma(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(RGB frame, its Y plane scaled to [0, 1] by the bit depth's full scale: code / (2^bits - 1))."""
        hdr = self.header
        maxv = float((1 << hdr.bit_depth) - 1)
        dtype = np.uint8 if hdr.bit_depth <= 8 else np.dtype("<u2")
        w, h = hdr.width, hdr.height
        sx, sy = _SUBSAMPLING[hdr.chroma]
        for index, start in enumerate(self._offsets):
            self._fh.seek(start)
            buf = self._fh.read(hdr.frame_bytes)
            if len(buf) != hdr.frame_bytes:  # the file shrank after it was indexed
                raise InputError(f"{self.path}: frame {index} is truncated")
            plane = np.frombuffer(buf, dtype=dtype).astype(np.float32)
            y = plane[: w * h].reshape(h, w)
            if sx == 0:
                cb = cr = np.full_like(y, 128.0 * (1 << (hdr.bit_depth - 8)))
            else:
                cw, ch = -(-w // sx), -(-h // sy)
                cb = plane[w * h : w * h + cw * ch].reshape(ch, cw)
                cr = plane[w * h + cw * ch :].reshape(ch, cw)
                cb = upsample_chroma(cb, sx, sy, h, w)
                cr = upsample_chroma(cr, sx, sy, h, w)
            yield ycbcr_to_rgb(y, cb, cr, hdr, self.matrix), (y / maxv).astype(np.float32)


def write_y4m(path: Path, frames: list[np.ndarray], fps: str = "25:1") -> None:
    """Write RGB [0,1] frames as 8-bit 4:4:4 BT.601 limited-range Y4M (tests, fixtures)."""
    h, w = frames[0].shape[:2]
    kr, kb = MATRICES["bt601"]
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps} Ip A1:1 C444\n".encode())
        for f in frames:
            r, g, b = f[..., 0], f[..., 1], f[..., 2]
            y = kr * r + (1 - kr - kb) * g + kb * b
            cb = (b - y) / (2 * (1 - kb))
            cr = (r - y) / (2 * (1 - kr))
            planes = [16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr]
            fh.write(b"FRAME\n")
            for p in planes:
                fh.write(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes())
