"""Video input: Y4M and every container/codec the FFmpeg bundled with PyAV decodes, as RGB frames.

Decoded frames keep their own Y'CbCr planes (8 to 16 bit, any chroma subsampling) and are
converted by ``registry.media.y4m.yuv_to_rgb``, the one conversion of tinyreg, with the
stream's own matrix (BT.601/709/2020) and range (limited/full): the same YUV frames give the
same RGB, and so the same scores, whether they arrive in a container or in a Y4M file.

Frames are aligned by index: ``aligned_frames`` yields (index, ref, dist) for the selected
indices and raises InputError naming both files when lengths or sizes differ (unless a
``Scale`` says how to resize).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import InputError, MissingDependency, UsageError
from registry.media.images import check_pixels
from registry.media.limits import DEFAULT_MAX_PIXELS
from registry.media.y4m import MATRICES, upsample_chroma, yuv_to_rgb

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
# AVColorSpace -> matrix (AVCOL_SPC_BT709, BT470BG, SMPTE170M, BT2020_NCL, BT2020_CL)
_AV_MATRIX = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 10: "bt2020"}
_AV_RANGE_FULL = 2  # AVCOL_RANGE_JPEG
_PLANAR_YUV = re.compile(r"^(yuvj?|yuva)(420|422|444|440|411|410)p(\d+)?(le|be)?$")
_GRAY = re.compile(r"^gray(\d+)?(le|be)?$")
# semi-planar formats whose planar twin holds the same samples
_SEMI_PLANAR = {"nv12": "yuv420p", "nv21": "yuv420p", "nv16": "yuv422p", "nv24": "yuv444p", "nv42": "yuv444p",
                "p010le": "yuv420p10le", "p012le": "yuv420p12le", "p016le": "yuv420p16le",
                "p210le": "yuv422p10le", "p410le": "yuv444p10le"}


def auto_matrix(height: int) -> str:
    """The matrix of an untagged stream: BT.709 for HD (>= 720 lines), BT.601 below."""
    return "bt709" if height >= 720 else "bt601"


def check_matrix(matrix: str) -> str:
    if matrix != "auto" and matrix not in MATRICES:
        raise UsageError(f"unknown matrix {matrix!r} (auto, {', '.join(MATRICES)})")
    return matrix


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    frames: int | None  # None: the container does not say
    kind: str  # y4m, container, image


class Video:
    """A video (or a still image: one frame) opened for sequential decoding."""

    info: VideoInfo
    # called with (height, width) of every decoded frame whose size differs from the last one, before it is
    # converted (e.g. the scorer's memory estimate); the pixel cap is checked by the reader itself
    frame_check: Callable[[int, int], None] | None = None

    def frames(self) -> Iterator[Callable[[], np.ndarray]]:
        """Frames in order, each a callable that converts it to HxWx3 float32 RGB in [0, 1] when called."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Y4MVideo(Video):
    def __init__(self, path: Path, matrix: str, max_pixels: int | None) -> None:
        from registry.media.y4m import Y4MReader

        self._r = Y4MReader(path, matrix, max_pixels=max_pixels)
        h = self._r.header
        self.info = VideoInfo(path, h.width, h.height, self._r.frame_count, "y4m")

    def frames(self) -> Iterator[Callable[[], np.ndarray]]:
        for rgb in self._r.frames():
            yield lambda rgb=rgb: rgb  # type: ignore[misc]

    def close(self) -> None:
        self._r.close()


class _ImageVideo(Video):
    def __init__(self, path: Path, max_pixels: int | None) -> None:
        from registry.media.images import read_image

        self._rgb = read_image(path, max_pixels=max_pixels)
        self.info = VideoInfo(path, self._rgb.shape[1], self._rgb.shape[0], 1, "image")

    def frames(self) -> Iterator[Callable[[], np.ndarray]]:
        yield lambda: self._rgb


def _plane(p: Any, width: int, height: int, dtype: np.dtype[Any]) -> np.ndarray:
    """One decoded plane as a height x width array (the decoder's row padding dropped)."""
    a = np.frombuffer(p, dtype=dtype)
    stride = p.line_size // dtype.itemsize
    out: np.ndarray = a[: stride * height].reshape(height, stride)[:, :width]
    return out


def frame_to_rgb(frame: Any, matrix: str = "auto") -> np.ndarray:
    """A decoded PyAV VideoFrame as HxWx3 float32 RGB in [0, 1], through ``yuv_to_rgb``."""
    name = frame.format.name
    if name in _SEMI_PLANAR:
        frame = frame.reformat(format=_SEMI_PLANAR[name])  # lossless: the same samples, planar
        name = frame.format.name
    w, h = frame.width, frame.height
    m = _PLANAR_YUV.match(name)
    g = _GRAY.match(name)
    if not m and not g:
        # RGB and other formats: swscale's own conversion, at 16 bits
        rgb: np.ndarray = np.asarray(frame.to_ndarray(format="rgb48le"), np.float32) / np.float32(65535.0)
        return rgb
    bits = int((m or g).group(3 if m else 1) or 8)  # type: ignore[union-attr]
    big = (m or g).group(4 if m else 2) == "be"  # type: ignore[union-attr]
    dtype = np.dtype(np.uint8) if bits <= 8 else np.dtype(">u2" if big else "<u2")
    full = frame.color_range == _AV_RANGE_FULL or name.startswith("yuvj") or (g is not None and frame.color_range != 1)
    if matrix == "auto":
        matrix = _AV_MATRIX.get(int(frame.colorspace), auto_matrix(h))
    y = _plane(frame.planes[0], w, h, dtype).astype(np.float32)
    if g:
        neutral = np.full_like(y, 128.0 * (1 << (bits - 8)))
        return yuv_to_rgb(y, neutral, neutral, bit_depth=bits, full_range=full, matrix=matrix)
    p1, p2 = frame.planes[1], frame.planes[2]
    cw, ch = p1.width, p1.height
    sx, sy = -(-w // cw), -(-h // ch)
    cb = upsample_chroma(_plane(p1, cw, ch, dtype).astype(np.float32), sx, sy, h, w)
    cr = upsample_chroma(_plane(p2, cw, ch, dtype).astype(np.float32), sx, sy, h, w)
    return yuv_to_rgb(y, cb, cr, bit_depth=bits, full_range=full, matrix=matrix)


class _AVVideo(Video):
    def __init__(self, path: Path, matrix: str, max_pixels: int | None) -> None:
        try:
            import av
        except ImportError as exc:
            raise MissingDependency("decoding video containers (PyAV)", "video") from exc
        self._matrix = matrix
        self._max_pixels = max_pixels
        try:
            from registry._internal.safeio import check_regular

            check_regular(path)  # a FIFO would block the demuxer, a device feed it forever
            self._c = av.open(str(path))
        except FileNotFoundError as exc:
            raise InputError(f"{path}: no such file") from exc
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable video ({_why(exc)})") from exc
        if not self._c.streams.video:
            self._c.close()
            raise InputError(f"{path}: no video stream")
        self._s = self._c.streams.video[0]
        self._s.thread_type = "AUTO"
        cc = self._s.codec_context
        self.info = VideoInfo(path, int(cc.width), int(cc.height), int(self._s.frames) or None, "container")
        try:
            check_pixels(self.info.width, self.info.height, max_pixels, path)
        except InputError:
            self._c.close()
            raise

    def frames(self) -> Iterator[Callable[[], np.ndarray]]:
        import av

        it = self._c.decode(self._s)
        index = 0
        last = (self.info.height, self.info.width)
        while True:
            try:
                frame = next(it)
            except StopIteration:
                return
            except (av.FFmpegError, OSError, ValueError) as exc:
                raise InputError(f"{self.info.path}: frame {index}: cannot decode ({_why(exc)})") from exc
            # the header's size binds nothing: a stream may change size mid-way (H.264 SPS, MJPEG), so every
            # frame is checked before it is converted
            size = (int(frame.height), int(frame.width))
            check_pixels(size[1], size[0], self._max_pixels, f"{self.info.path}: frame {index}")
            if size != last and self.frame_check is not None:
                self.frame_check(*size)
            last = size
            yield lambda frame=frame: frame_to_rgb(frame, self._matrix)  # type: ignore[misc]
            index += 1

    def close(self) -> None:
        self._c.close()


def _why(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc).splitlines()[0][:200] or exc.__class__.__name__


def open_video(path: Path, matrix: str = "auto", *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Video:
    """Y4M by its magic bytes, a still image by its suffix, anything else through PyAV.

    A frame size over ``max_pixels`` (None: no cap) is refused from the header.
    """
    check_matrix(matrix)
    from registry._internal.safeio import open_regular, unreadable

    try:
        with open_regular(path) as (fh, _):  # a FIFO, device or socket is refused without blocking
            magic = fh.read(9)
    except OSError as exc:
        raise unreadable(str(path), exc) from exc
    if magic == b"YUV4MPEG2":
        return _Y4MVideo(path, matrix, max_pixels)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _ImageVideo(path, max_pixels)
    return _AVVideo(path, matrix, max_pixels)


# ---------------------------------------------------------------- selection, scaling, alignment


@dataclass(frozen=True)
class Selection:
    """Which frame indices to score: ``start``, ``start + every``, ... at most ``count`` of them."""

    start: int = 0
    count: int | None = None
    every: int = 1

    def __post_init__(self) -> None:
        if self.start < 0 or self.every < 1 or (self.count is not None and self.count < 1):
            raise UsageError("frame selection: start >= 0, every >= 1 and frames >= 1")

    def wants(self, index: int) -> bool:
        return index >= self.start and (index - self.start) % self.every == 0

    def done(self, index: int) -> bool:
        """No index at or after ``index`` is wanted."""
        return self.count is not None and index >= self.start + self.count * self.every

    def expected(self, total: int | None) -> int | None:
        """How many frames this selects from a video of ``total`` frames."""
        if total is None:
            return self.count
        n = max(0, -(-(total - self.start) // self.every))
        return n if self.count is None else min(n, self.count)


@dataclass(frozen=True)
class Scale:
    """How to reconcile frame sizes: ``none`` (a mismatch is an error), ``ref`` (dist resized to ref), or WxH (both)."""

    mode: str = "none"
    width: int = 0
    height: int = 0

    @staticmethod
    def parse(text: str | None) -> Scale:
        t = (text or "none").strip().lower()
        if t in ("none", "ref"):
            return Scale(t)
        m = re.fullmatch(r"(\d+)x(\d+)", t)
        if not m or not (16 <= int(m.group(1)) <= 16384 and 16 <= int(m.group(2)) <= 16384):
            raise UsageError(f"scale {text!r}: use none, ref or WxH (16..16384)")
        return Scale("size", int(m.group(1)), int(m.group(2)))

    def target(self, ref: VideoInfo, dist: VideoInfo) -> tuple[int, int] | None:
        """(w, h) every frame is brought to, or None to leave frames as they are."""
        if self.mode == "size":
            return self.width, self.height
        if (ref.width, ref.height) == (dist.width, dist.height):
            return None
        if self.mode == "ref":
            return ref.width, ref.height
        raise InputError(f"{ref.path} is {ref.width}x{ref.height} but {dist.path} is {dist.width}x{dist.height}",
                         hint="scale")


def aligned_frames(ref: Video, dist: Video, sel: Selection, scale: Scale = Scale()) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(index, ref RGB, dist RGB) for each selected index; InputError naming both files on any mismatch."""
    from registry.media.resize import resize_rgb

    a, b = ref.info, dist.info
    for v in (a, b):
        if v.frames == 0:
            raise InputError(f"{v.path}: no frames")
    size = scale.target(a, b)
    if a.frames is not None and b.frames is not None and a.frames != b.frames:
        raise InputError(f"{a.path} has {a.frames} frames but {b.path} has {b.frames}")
    ia, ib = ref.frames(), dist.frames()
    index = 0
    while not sel.done(index):
        fa, fb = next(ia, None), next(ib, None)
        if fa is None and fb is None:
            break
        if fa is None or fb is None:
            short, long_ = (a, b) if fa is None else (b, a)
            raise InputError(f"{short.path} ends after {index} frames but {long_.path} goes on")
        if sel.wants(index):
            x, y = fa(), fb()
            if size is not None:
                w, h = size
                x = x if x.shape[:2] == (h, w) else resize_rgb(x, h, w)
                y = y if y.shape[:2] == (h, w) else resize_rgb(y, h, w)
            elif x.shape != y.shape:
                raise InputError(f"frame {index}: {a.path} is {x.shape[1]}x{x.shape[0]} but {b.path} is {y.shape[1]}x{y.shape[0]}")
            yield index, x, y
        index += 1
    if index <= sel.start and not sel.done(index):
        raise InputError(f"{a.path}: start frame {sel.start} is past the end ({index} frames)")
