"""What a model family plugin declares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

IMAGENET_RGB_CONVENTIONS: dict[str, Any] = {
    "layout": "NCHW",
    "colour_order": "RGB",
    "value_range": [0.0, 1.0],
    "normalisation": "imagenet",
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
    "resize": "none",
}


def fr_image_io(output_doc: str = "score") -> dict[str, Any]:
    """I/O contract of a full-reference image metric: ref, dist -> scalar score."""
    t = {"dtype": "float32", "shape": [1, 3, "H", "W"]}
    return {
        "inputs": [{"name": "ref", **t}, {"name": "dist", **t}],
        "outputs": [{"name": output_doc, "dtype": "float32", "shape": []}],
    }


@dataclass(frozen=True)
class Upstream:
    """A file of upstream weights with its pin."""

    name: str
    url: str
    sha256: str
    license: str
    filename: str
    size: int | None = None  # bytes, when known: downloads are capped at it

    def size_for(self, sha256: str) -> int | None:
        """The pinned size when ``sha256`` is this file's pin (a user-supplied file has none)."""
        return self.size if sha256.lower() == self.sha256 else None


@dataclass(frozen=True)
class QuantPolicy:
    """What may be quantised (everything else stays fp32), why, and how to calibrate and gate."""

    op_types: tuple[str, ...]
    node_prefixes: tuple[str, ...]
    rationale: str
    calibration_pairs: int = 16
    calibration_size: tuple[int, int] = (64, 64)
    gate_pairs: int = 96  # per size: 384 pairs in all keep the verdict seed-independent
    gate_sizes: tuple[tuple[int, int], ...] = ((64, 64), (96, 96), (72, 120), (120, 88))


@dataclass(frozen=True)
class MemoryModel:
    """Peak memory of scoring one pair at H x W: ``base + per_pixel * H * W`` bytes.

    Measured, not derived: peak RSS of one process that loads the full-size fp32 model
    with tinyreg's session options and scores one pair (``python -m bench.memory``
    re-measures it and checks the estimate still bounds the measurement).
    """

    base: int
    per_pixel: int

    def estimate(self, h: int, w: int) -> int:
        return self.base + self.per_pixel * h * w


# (n pairs, (h, w), seed) -> (ref, dist) HxWx3 float32 RGB in [0, 1]
Representative = Callable[[int, tuple[int, int], int], Iterator[tuple[Any, Any]]]


@dataclass(frozen=True)
class Family:
    name: str
    default_id: str
    kind: str
    title: str
    description: str
    reference: str
    license: str
    license_url: str
    license_notes: str
    io: dict[str, Any]
    input_conventions: dict[str, Any]
    score_convention: str
    ops: frozenset[tuple[str, str]]
    smoke_seed: int
    placeholder_for: str
    build_smoke: Callable[[int], Any]
    smoke_generator: str
    quant_accuracy_budget_plcc: float
    upstream: tuple[Upstream, ...] = ()
    # "module:function" strings, imported only when used (they may need torch)
    exporter: str | None = None
    parity: str | None = None
    quant: QuantPolicy | None = None
    representative: Representative | None = None
    score_memory: MemoryModel | None = None
