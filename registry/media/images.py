"""Image I/O and representative full-reference test pairs.

Pairs are natural images (the set scikit-image ships) under real distortions:
Gaussian blur, additive noise, JPEG compression, contrast change and a small
shift. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import struct
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import InputError, MissingDependency
from registry.media.limits import DEFAULT_MAX_PIXELS

NATURAL_IMAGES = (
    "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
    "camera", "brick", "grass", "gravel", "moon", "coins", "clock",
)  # fmt: skip
DISTORTIONS = ("blur", "noise", "jpeg", "contrast", "shift")


@functools.lru_cache(maxsize=len(NATURAL_IMAGES))
def _natural_uint8(name: str) -> np.ndarray:
    """HxWx3 uint8 RGB from scikit-image's bundled data, decoded once per process (read-only)."""
    try:
        import skimage.data
    except ImportError as exc:
        raise MissingDependency("natural test images (scikit-image)", "gate") from exc
    if name not in NATURAL_IMAGES:
        raise ValueError(f"unknown natural image {name!r}")
    im = np.asarray(getattr(skimage.data, name)())
    if im.dtype != np.uint8:  # every image of the set is 8-bit; anything else is another scikit-image
        raise ValueError(f"scikit-image's {name!r} is {im.dtype}, not 8-bit")
    if im.ndim == 2:
        im = np.stack([im] * 3, axis=-1)
    rgb = np.ascontiguousarray(im[..., :3])
    # over immutable bytes: read-only for good (``flags.writeable = True`` on an array owning its memory, or on a
    # view of a writable one, would let one caller change every later caller's images)
    return np.frombuffer(rgb.tobytes(), np.uint8).reshape(rgb.shape)


def natural_image(name: str) -> np.ndarray:
    """HxWx3 float32 RGB in [0, 1] from scikit-image's bundled data (a new array each call)."""
    return (_natural_uint8(name).astype(np.float32) / 255.0).astype(np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _resize_uint8(im8: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(im8).resize((w, h), Image.Resampling.BICUBIC))


def resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bicubic resize of HxWx3 [0, 1] to ``h`` x ``w`` (through 8 bits, as a decoded frame is)."""
    return (_resize_uint8(to_uint8(x), h, w).astype(np.float32) / 255.0).astype(np.float32)


def distort(x: np.ndarray, kind: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """Apply one distortion; ``level`` in (0, 1] sets its strength."""
    from PIL import Image, ImageFilter

    if kind == "blur":
        im = Image.fromarray(to_uint8(x)).filter(ImageFilter.GaussianBlur(radius=0.5 + 3.0 * level))
        return (np.asarray(im, np.float32) / 255.0).astype(np.float32)
    if kind == "noise":
        return np.clip(x + rng.normal(0.0, 0.01 + 0.12 * level, x.shape), 0.0, 1.0).astype(np.float32)
    if kind == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(to_uint8(x)).save(buf, format="JPEG", quality=round(90 - 85 * level))
        buf.seek(0)
        return (np.asarray(Image.open(buf).convert("RGB"), np.float32) / 255.0).astype(np.float32)
    if kind == "contrast":
        m = x.mean()
        out: np.ndarray = np.clip((x - m) * (1.0 - 0.7 * level) + m, 0.0, 1.0).astype(np.float32)
        return out
    if kind == "shift":
        d = max(1, round(1 + 6 * level))
        pad = np.pad(x, ((d, 0), (d, 0), (0, 0)), mode="edge")
        return np.ascontiguousarray(pad[: x.shape[0], : x.shape[1]]).astype(np.float32)
    raise ValueError(f"unknown distortion {kind!r}")


@dataclass(frozen=True)
class Pair:
    name: str
    ref: np.ndarray  # HxWx3 float32 [0, 1]
    dist: np.ndarray


def fr_pairs(n: int, size: tuple[int, int], seed: int = 0) -> Iterator[Pair]:
    """``n`` deterministic (ref, distorted) pairs of ``size`` (h, w)."""
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(n):
        name = NATURAL_IMAGES[(i + seed) % len(NATURAL_IMAGES)]
        kind = DISTORTIONS[i % len(DISTORTIONS)]
        # cropped and resized in 8 bits: the same pixels as through natural_image() and resize(), without
        # converting the whole image to float and back for every pair
        img = _natural_uint8(name)
        scale = rng.uniform(0.5, 1.0)
        ch, cw = max(h, int(img.shape[0] * scale)), max(w, int(img.shape[1] * scale))
        img_s = _resize_uint8(img, max(h, img.shape[0]), max(w, img.shape[1])) if ch > img.shape[0] or cw > img.shape[1] else img
        y0 = int(rng.integers(0, img_s.shape[0] - min(ch, img_s.shape[0]) + 1))
        x0 = int(rng.integers(0, img_s.shape[1] - min(cw, img_s.shape[1]) + 1))
        crop = np.ascontiguousarray(img_s[y0 : y0 + min(ch, img_s.shape[0]), x0 : x0 + min(cw, img_s.shape[1])])
        ref = (_resize_uint8(crop, h, w).astype(np.float32) / 255.0).astype(np.float32)
        level = float(rng.uniform(0.1, 1.0))
        yield Pair(f"{name}/{kind}@{level:.2f}/{h}x{w}", ref, distort(ref, kind, level, rng))


_PIL_LOCK = threading.Lock()

# Pillow modes holding more than 8 bits a sample, and the full-scale value of each
_WIDE_MODES = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0}


_NULL_HANDLER = logging.NullHandler()
# what Pillow's decoders raise on damaged files besides OSError: e.g. SyntaxError for a broken PNG chunk, struct.error
# and EOFError for short headers, IndexError/ZeroDivisionError/KeyError/TypeError for inconsistent header fields
_DECODER_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, ZeroDivisionError, KeyError, TypeError)


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Discard what C decoders write to file descriptor 2 while they run (libtiff prints e.g. "Fax3SetupState: ..."
    before Pillow raises): tinyreg's own line says what went wrong, and one line is all a failure prints."""
    import sys
    import tempfile

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def check_pixels(width: int, height: int, max_pixels: int | None, source: object) -> None:
    """InputError when ``width x height`` is over the cap (``None``: no cap)."""
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(
            f"{source}: {width}x{height} is {width * height / 1e6:.1f} Mpx, over the cap of {max_pixels / 1e6:.1f} Mpx",
            hint="max_pixels",
        )


def _open(path: Path, max_pixels: int | None) -> Any:
    """Image.open with the pixel cap checked on the header, before any pixel is decoded."""
    from PIL import Image

    # Pillow logs some refusals (e.g. TIFF samples per pixel) at ERROR before raising: with no handler, logging's
    # last resort would print them as a second stderr line beside tinyreg's one
    logging.getLogger("PIL").addHandler(_NULL_HANDLER)
    with _PIL_LOCK, warnings.catch_warnings():
        # Pillow's own bomb guard is global; make it agree with ours for this open (it raises
        # at twice its limit, so our check below is the one that decides).
        warnings.simplefilter("ignore")  # DecompressionBombWarning, and warnings about damaged headers (the refusal says it)
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            from registry._internal.safeio import check_regular

            check_regular(path)  # a FIFO would block Image.open, a device feed it forever
            im = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise InputError(f"{path}: image dimensions over the cap of {(max_pixels or 0) / 1e6:.1f} Mpx (a decompression bomb?)",
                             hint="max_pixels") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = old
    try:
        check_pixels(im.width, im.height, max_pixels, path)
    except InputError:
        im.close()
        raise
    return im


def image_size(path: Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(height, width) from the file header alone, with the pixel cap applied."""
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings(), _open(path, max_pixels) as im:
            warnings.simplefilter("ignore")  # Pillow warns about damaged files (a second stderr line); the refusal says it
            return int(im.height), int(im.width)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except (UnidentifiedImageError, *_DECODER_ERRORS) as exc:  # type: ignore[misc]
        raise InputError(f"{path}: not a readable image ({exc.__class__.__name__})") from exc


def _to_float_rgb(im: Any, path: Path) -> np.ndarray:
    """HxWx3 float32 in [0, 1], each sample scaled by its true full-scale value."""
    mode = im.mode
    if mode in _WIDE_MODES:  # 16-bit greyscale (PNG, TIFF): convert("RGB") would clip it to 255
        grey = np.asarray(im).astype(np.float32) / np.float32(_WIDE_MODES[mode])
        return np.repeat(grey[..., None], 3, axis=-1)
    if mode == "I":  # 32-bit integer samples: the container says how many bits are real
        bits = _bits_per_sample(im)
        if bits is None:
            raise InputError(f"{path}: 32-bit integer pixels of unknown bit depth are not supported")
        grey = np.asarray(im).astype(np.float64) / float((1 << bits) - 1)
        if grey.min() < 0 or grey.max() > 1:
            raise InputError(f"{path}: pixel values outside the {bits}-bit range")
        return np.repeat(grey.astype(np.float32)[..., None], 3, axis=-1)
    if mode == "F":
        raise InputError(f"{path}: floating-point images are not supported (no defined white level)")
    arr = np.asarray(im.convert("RGB"))  # 1, L, LA, P, RGB, RGBA, CMYK, YCbCr, ...: 8 bits a sample
    return (arr.astype(np.float32) / np.float32(255.0)).astype(np.float32)


def _bits_per_sample(im: Any) -> int | None:
    tags = getattr(im, "tag_v2", None)
    bits = tags.get(258) if tags is not None else None  # TIFF BitsPerSample
    if isinstance(bits, tuple):
        bits = bits[0] if bits else None
    return int(bits) if isinstance(bits, int) and 1 <= bits <= 32 else None


def read_image(path: Path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image file as HxWx3 float32 RGB in [0, 1].

    The pixel count is checked on the header before anything is decoded
    (``max_pixels=None`` lifts the cap). 16-bit greyscale is scaled by 65535, not
    clipped; Pillow decodes 16-bit colour PNGs to 8 bits a sample.
    """
    try:
        from PIL import UnidentifiedImageError
    except ImportError as exc:
        raise InputError("reading images needs Pillow, part of every tinyreg install: pip install 'pillow>=10'") from exc
    try:
        with warnings.catch_warnings(), _open(path, max_pixels) as im:
            warnings.simplefilter("ignore")  # Pillow warns about damaged files (a second stderr line); the refusal says it
            if im.format == "TIFF":  # libtiff writes its complaints to file descriptor 2 itself
                with _quiet_native_stderr():
                    return _to_float_rgb(im, path)
            return _to_float_rgb(im, path)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except (UnidentifiedImageError, *_DECODER_ERRORS) as exc:  # type: ignore[misc]
        raise InputError(f"{path}: not a readable image ({exc.__class__.__name__})") from exc


def imagenet_nchw(x: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """HxWx3 [0,1] RGB -> 1x3xHxW normalised, float32, as the model ABI wants."""
    m = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    t = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
    return ((t - m) / s).astype(np.float32)



def representative_fr_pairs(n: int, size: tuple[int, int], seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Representative inputs of full-reference image metrics: natural images under real distortions."""
    for pair in fr_pairs(n, size, seed):
        yield pair.ref, pair.dist
