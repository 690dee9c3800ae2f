"""Gate input sets (``.npz``, one array per model input, samples along the first axis) from a maintainer's own data.

Two shapes cover the VMAFx models:

* frames: ``(N, 1, H, W)`` float32 luma in [0, 1] (BT.601 weights, 8-bit levels), crops of natural images or of
  Y4M video frames at random positions and scales, part of them under real distortions (blur,
  noise, JPEG, contrast) so that quality, and with it the model's output, varies across the set.
  ``nr_metric_v1`` (input ``frame``) and ``learned_filter_v1`` (input ``degraded``) take 224x224.
* feature vectors: ``(N, 6)`` float32, the canonical six libvmaf features in the order the VMAFx
  sidecars list them (``adm2, vif_scale0, vif_scale1, vif_scale2, vif_scale3, motion2``), one row
  per frame of a libvmaf JSON or CSV log (``vmaf_tiny_v2..v4``, ``fr_regressor_v1``: input ``features``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from registry._internal.jsonio import loads_json
from registry.errors import InputError, UsageError

CANONICAL_6 = ("adm2", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3", "motion2")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
FRAME_DISTORTIONS = ("blur", "noise", "jpeg", "contrast")
BT601 = (0.299, 0.587, 0.114)


def luma(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 RGB [0, 1] -> HxW luma [0, 1] (BT.601 weights) on the 8-bit grid, as a decoded 8-bit Y plane holds it.

    (The grid also halves the compressed size of a set: 64 frames at 224x224 are 3 MB instead of 6.5.)
    """
    kr, kg, kb = BT601
    y = kr * rgb[..., 0] + kg * rgb[..., 1] + kb * rgb[..., 2]
    out: np.ndarray = (np.clip(np.rint(y * 255.0), 0, 255) / 255.0).astype(np.float32)
    return out


def frames_from(paths: Sequence[Path], *, every: int = 1) -> Iterator[tuple[str, np.ndarray]]:
    """(name, HxWx3 RGB [0, 1]) from image files, Y4M videos (every ``every``-th frame) and folders of either."""
    from registry.media.images import read_image
    from registry.media.y4m import Y4MReader

    for p in paths:
        if p.is_dir():
            inner = sorted(q for q in p.iterdir() if q.suffix.lower() in (*IMAGE_SUFFIXES, ".y4m"))
            if not inner:
                raise InputError(f"{p}: no images ({', '.join(IMAGE_SUFFIXES)}) or .y4m videos")
            yield from frames_from(inner, every=every)
        elif p.suffix.lower() == ".y4m":
            with Y4MReader(p) as r:
                for i, f in enumerate(r.frames()):
                    if i % every == 0:
                        yield f"{p.name}#{i}", f
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            yield p.name, read_image(p)
        elif not p.exists():
            raise InputError(f"{p}: no such file or folder")
        else:
            raise InputError(f"{p}: not an image ({', '.join(IMAGE_SUFFIXES)}) or a .y4m video")


def natural_frames() -> Iterator[tuple[str, np.ndarray]]:
    """The natural images scikit-image ships (the family gates' source)."""
    from registry.media.images import NATURAL_IMAGES, natural_image

    for name in NATURAL_IMAGES:
        yield name, natural_image(name)


def build_frame_set(sources: Sequence[tuple[str, np.ndarray]], n: int, *, size: int = 224, seed: int = 0,
                    distorted: float = 0.75) -> tuple[np.ndarray, list[str]]:
    """``(n, 1, size, size)`` float32 luma crops and a label per sample.

    Sample ``i`` comes from source ``i mod len(sources)``: a square crop of random side (between
    ``size`` and the short side) at a random place, resized to ``size``; a fraction ``distorted`` of
    the samples get one distortion at a random level.
    """
    from registry.media.images import distort, resize

    if not sources:
        raise UsageError("no frames to build an input set from")
    if n < 1 or size < 8:
        raise UsageError("need at least one sample of at least 8x8")
    rng = np.random.default_rng(seed)
    out = np.empty((n, 1, size, size), np.float32)
    labels = []
    for i in range(n):
        name, rgb = sources[i % len(sources)]
        h, w = rgb.shape[:2]
        if min(h, w) < size:
            scale = size / min(h, w)
            rgb = resize(rgb, max(size, round(h * scale)), max(size, round(w * scale)))
            h, w = rgb.shape[:2]
        side = int(rng.integers(size, min(h, w) + 1))
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = rgb[y0 : y0 + side, x0 : x0 + side]
        if side != size:
            crop = resize(crop, size, size)
        label = f"{name}@{y0},{x0}+{side}"
        if rng.uniform() < distorted:
            kind = FRAME_DISTORTIONS[int(rng.integers(0, len(FRAME_DISTORTIONS)))]
            level = float(rng.uniform(0.1, 1.0))
            crop = distort(crop, kind, level, rng)
            label += f"/{kind}@{level:.2f}"
        out[i, 0] = luma(crop)
        labels.append(label)
    return out, labels


def _feature_value(metrics: dict[str, object], name: str) -> float | None:
    """A feature under the names libvmaf versions log it with (integer and float extractors, old VMAF_ prefix)."""
    for key in (f"integer_{name}", name, f"float_{name}", f"VMAF_integer_feature_{name}_score", f"VMAF_feature_{name}_score"):
        v = metrics.get(key)
        if v is not None:
            try:
                return float(v)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return None
    return None


def _rows_json(data: bytes, source: str) -> list[dict[str, object]]:
    try:
        doc = loads_json(data, source)
    except InputError as exc:
        raise InputError(f"not a libvmaf JSON log: {exc.diagnostics()}") from exc
    frames = doc.get("frames") if isinstance(doc, dict) else None
    if not isinstance(frames, list):
        raise InputError(f"{source}: no 'frames' list (a libvmaf JSON log has one)")
    return [f["metrics"] for f in frames if isinstance(f, dict) and isinstance(f.get("metrics"), dict)]


def _rows_csv(data: bytes, source: str) -> list[dict[str, object]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not a text CSV log") from exc
    try:
        return [dict(r) for r in csv.DictReader(io.StringIO(text))]
    except csv.Error as exc:  # e.g. a field over the csv module's limit, a NUL byte, a stray newline
        raise InputError(f"{source}: not a libvmaf CSV log ({exc})") from exc


_F32_MAX = float(np.finfo(np.float32).max)


def read_feature_log(path: Path, features: Sequence[str] = CANONICAL_6) -> np.ndarray:
    """``(frames, len(features))`` float32 from a libvmaf JSON or CSV log."""
    from registry._internal.hashing import read_file

    data = read_file(path, cap="log")
    rows = _rows_json(data, str(path)) if data.lstrip()[:1] == b"{" else _rows_csv(data, str(path))
    if not rows:
        raise InputError(f"{path}: no frames")
    out = np.empty((len(rows), len(features)), np.float32)
    for i, row in enumerate(rows):
        for j, name in enumerate(features):
            v = _feature_value(row, name)
            if v is None or not np.isfinite(v) or abs(v) > _F32_MAX:  # 1e300 is finite, but not as a float32
                have = ", ".join(sorted(str(k) for k in row)[:12])
                raise InputError(f"{path}: frame {i} has no usable '{name}' (looked for integer_{name}, {name}, "
                                 f"float_{name}; the log has {have})")
            out[i, j] = v
    return out


def build_feature_set(logs: Sequence[Path], features: Sequence[str] = CANONICAL_6) -> np.ndarray:
    if not logs:
        raise UsageError("no libvmaf logs to build an input set from")
    return np.concatenate([read_feature_log(p, features) for p in logs])


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def write_input_set(out: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write the set atomically (a reader never sees half a file)."""
    from registry._internal.atomic import write_atomic

    if out.suffix != ".npz":
        raise UsageError(f"{out}: an input set is an .npz file")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, npz_bytes(arrays))
    return out
