"""Image I/O and representative full-reference test pairs.

Pairs are natural images (the set scikit-image ships) under real distortions:
Gaussian blur, additive noise, JPEG compression, contrast change and a small
shift. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from registry.errors import InputError, MissingDependency

NATURAL_IMAGES = (
    "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
    "camera", "brick", "grass", "gravel", "moon", "coins", "clock",
)  # fmt: skip
DISTORTIONS = ("blur", "noise", "jpeg", "contrast", "shift")


def natural_image(name: str) -> np.ndarray:
    """HxWx3 float32 RGB in [0, 1] from scikit-image's bundled data."""
    try:
        import skimage.data
    except ImportError as exc:
        raise MissingDependency("natural test images (scikit-image)", "export") from exc
    im = np.asarray(getattr(skimage.data, name)())
    if im.ndim == 2:
        im = np.stack([im] * 3, axis=-1)
    return (im[..., :3].astype(np.float32) / 255.0).astype(np.float32)


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(to_uint8(x)).resize((w, h), Image.Resampling.BICUBIC)
    return (np.asarray(im, np.float32) / 255.0).astype(np.float32)


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
    cache: dict[str, np.ndarray] = {}
    for i in range(n):
        name = NATURAL_IMAGES[(i + seed) % len(NATURAL_IMAGES)]
        kind = DISTORTIONS[i % len(DISTORTIONS)]
        if name not in cache:
            cache[name] = natural_image(name)
        img = cache[name]
        scale = rng.uniform(0.5, 1.0)
        ch, cw = max(h, int(img.shape[0] * scale)), max(w, int(img.shape[1] * scale))
        img_s = resize(img, max(h, img.shape[0]), max(w, img.shape[1])) if ch > img.shape[0] or cw > img.shape[1] else img
        y0 = int(rng.integers(0, img_s.shape[0] - min(ch, img_s.shape[0]) + 1))
        x0 = int(rng.integers(0, img_s.shape[1] - min(cw, img_s.shape[1]) + 1))
        crop = img_s[y0 : y0 + min(ch, img_s.shape[0]), x0 : x0 + min(cw, img_s.shape[1])]
        ref = resize(crop, h, w)
        level = float(rng.uniform(0.1, 1.0))
        yield Pair(f"{name}/{kind}@{level:.2f}/{h}x{w}", ref, distort(ref, kind, level, rng))


def read_image(path: Path) -> np.ndarray:
    """An image file as HxWx3 float32 RGB in [0, 1]."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise MissingDependency("reading images (Pillow)", "export") from exc
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
            arr = np.asarray(rgb)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable image ({exc.__class__.__name__})") from exc
    if arr.dtype == np.uint16:
        return (arr.astype(np.float32) / 65535.0).astype(np.float32)
    return (arr.astype(np.float32) / 255.0).astype(np.float32)


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
