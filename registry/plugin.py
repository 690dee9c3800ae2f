"""The public SDK of a tinyreg model family: everything a family imports comes from here.

A family is one folder (a package) and one entry point in the ``tinyreg.families`` group
naming a :class:`Family` instance. It declares *what* it is; the core does the rest:

* :class:`Metadata` -- name, default entry id, kind, title, licence, what the score means
  and its direction, the score of two identical inputs;
* :class:`Contract` -- the I/O contract (tensor names, dtypes, shapes) and the input
  conventions, checked by the core on every smoke build, export and load;
* ``weights`` -- the :class:`WeightFile` pins (key, upstream URL, sha256); empty for a
  weight-free family, whose graph *is* the metric;
* :meth:`Family.build` -- ``build(weights | None, opset)``; ``None`` asks for the smoke
  placeholder (seeded random weights, the real structure);
* :meth:`Family.feeds` -- the only place a :class:`Sample` becomes model input;
* :meth:`Family.samples` -- representative inputs for the quantisation gate and parity;
* :meth:`Family.reference` -- optional reference implementation for parity;
* ``quant`` -- :class:`Quantise` (what may be quantised and why) or :class:`NotQuantised`;
* ``fp16`` -- :class:`Fp16` (what runs in half precision in the fp16 sibling; everything
  else stays fp32) or :class:`NotFp16` (the default: no fp16 sibling, and why).

The core fetches weights with their pins and hands the family the verified bytes; it runs
every graph check (opset, I/O contract, declared op set, allowlist, ONNX checker) and does
every write. A family never touches the registry folder.

Example (the whole of a weight-free family)::

    from registry.plugin import Contract, Family, GraphBuilder, Metadata, NotQuantised, ...

    class Mine(Family):
        meta = Metadata(name="mine", default_id="mine_v1", ...)
        contract = full_reference_contract(channels=1, conventions=LUMA_CONVENTIONS)
        ops = onnx_ops("Sub", "Mul", "ReduceMean", "Reshape")
        quant = NotQuantised("a handful of arithmetic ops; nothing worth quantising")

        def build(self, weights, opset):
            gb = GraphBuilder(opset)
            ...
            return gb.build(...)

    FAMILY = Mine()
"""

from __future__ import annotations

import abc
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol

import numpy as np

from registry.errors import InputError, MissingDependency, UsageError
from registry.onnx.build import SUPPORTED_OPSETS, GraphBuilder

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_RGB_CONVENTIONS",
    "IMAGENET_STD",
    "LUMA_CONVENTIONS",
    "RAW_RGB_CONVENTIONS",
    "SUPPORTED_OPSETS",
    "Contract",
    "Direction",
    "Family",
    "Fp16",
    "GraphBuilder",
    "InputError",
    "Kind",
    "MemoryModel",
    "Metadata",
    "MissingDependency",
    "NotFp16",
    "NotQuantised",
    "Parity",
    "Quantise",
    "Reference",
    "Sample",
    "TensorSpec",
    "UsageError",
    "WeightFile",
    "Weights",
    "bt601_luma",
    "full_reference_contract",
    "imagenet_nchw",
    "load_torch_weights",
    "natural_pairs",
    "onnx_ops",
    "reference_name",
    "rgb_nchw",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

IMAGENET_RGB_CONVENTIONS: Mapping[str, Any] = {
    "layout": "NCHW",
    "colour_order": "RGB",
    "value_range": [0.0, 1.0],
    "normalisation": "imagenet",
    "mean": list(IMAGENET_MEAN),
    "std": list(IMAGENET_STD),
    "resize": "none",
}
RAW_RGB_CONVENTIONS: Mapping[str, Any] = {
    "layout": "NCHW", "colour_order": "RGB", "value_range": [0.0, 1.0], "normalisation": "none", "resize": "none",
}
LUMA_CONVENTIONS: Mapping[str, Any] = {
    "layout": "NCHW",
    "colour_order": "Y: BT.601 luma (0.299 R + 0.587 G + 0.114 B) of RGB images; the Y plane of Y4M video",
    "value_range": [0.0, 1.0],
    "normalisation": "none",
    "resize": "none",
}


class Kind(StrEnum):
    """What a model does: full-reference metric, no-reference metric, or filter."""

    FULL_REFERENCE = "fr"
    NO_REFERENCE = "nr"
    FILTER = "filter"


class Direction(StrEnum):
    """Which way a better result moves the score."""

    LOWER_IS_BETTER = "lower is better"
    HIGHER_IS_BETTER = "higher is better"


@dataclass(frozen=True)
class Metadata:
    """Who the family is and what its score means."""

    name: str  # entry point name, [a-z0-9_-]
    default_id: str  # entry id when the user names none
    kind: Kind
    title: str
    description: str
    citation: str
    license: str
    license_url: str
    license_notes: str
    score_meaning: str  # recorded in the entry's conventions and card, e.g. "distance; 0 for identical images, larger is worse"
    direction: Direction
    identical_score: float  # the score of two identical inputs (0 for a distance, 1 for a similarity)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]  # a string per dynamic dimension
    dtype: str = "float32"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Contract:
    """The graph's I/O and how inputs are prepared; enforced by the core, recorded in every entry."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    conventions: Mapping[str, Any]  # layout, colour order, value range, normalisation (mean/std), resize
    min_size: int = 16  # smallest height and width the graph accepts

    def io_json(self) -> dict[str, Any]:
        return {"inputs": [t.as_json() for t in self.inputs], "outputs": [t.as_json() for t in self.outputs]}

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)


def full_reference_contract(
    channels: int = 3, conventions: Mapping[str, Any] = IMAGENET_RGB_CONVENTIONS, min_size: int = 16
) -> Contract:
    """``ref``, ``dist`` (float32 [1, C, H, W]) -> ``score`` (float32 scalar)."""
    t = (1, channels, "H", "W")
    return Contract((TensorSpec("ref", t), TensorSpec("dist", t)), (TensorSpec("score", ()),), dict(conventions), min_size)


@dataclass(frozen=True)
class WeightFile:
    """An upstream weight file the family is built from, with its pin.

    ``key`` is how users name it (``tinyreg export FAMILY --weight KEY=PATH|URL[#sha256]``).
    """

    key: str
    name: str
    url: str
    sha256: str
    license: str
    filename: str  # cache file name
    size: int | None = None  # bytes, when known: downloads are capped at it

    def size_for(self, sha256: str) -> int | None:
        """The pinned size when ``sha256`` is this file's pin (a user-supplied file has none)."""
        return self.size if sha256.lower() == self.sha256 else None


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


# key -> the file's bytes, already checked against its pin by the core
Weights = Mapping[str, bytes]


@dataclass(frozen=True)
class Sample:
    """One input to score.

    ``images``: role (``ref``, ``dist`` for full-reference families) -> HxWx3 float32 RGB
    in [0, 1]. ``luma``: the same roles -> HxW float32 Y plane in [0, 1], present when the
    source carries one (Y4M video), so a luma family can use it instead of converting RGB.
    """

    name: str
    images: Mapping[str, np.ndarray]
    luma: Mapping[str, np.ndarray] | None = None

    @property
    def size(self) -> tuple[int, int]:
        first = next(iter(self.images.values()))
        return int(first.shape[0]), int(first.shape[1])


@dataclass(frozen=True)
class Quantise:
    """What may be quantised (everything else stays fp32), why, and how to calibrate and gate."""

    op_types: tuple[str, ...]
    node_prefixes: tuple[str, ...]
    rationale: str
    budget_plcc: float  # largest allowed 1 - PLCC(fp32, int8)
    calibration_pairs: int = 16
    calibration_size: tuple[int, int] = (64, 64)
    gate_pairs: int = 96  # per size: 384 samples in all keep the verdict seed-independent
    gate_sizes: tuple[tuple[int, int], ...] = ((64, 64), (96, 96), (72, 120), (120, 88))


@dataclass(frozen=True)
class NotQuantised:
    """The family is not quantised, and why (recorded in the entry and its card)."""

    reason: str
    gate_pairs: int = 48
    gate_sizes: tuple[tuple[int, int], ...] = ((64, 64), (72, 120))


@dataclass(frozen=True)
class Fp16:
    """The family's precision policy for its fp16 sibling: what runs in fp16; everything else stays fp32.

    A node runs in fp16 only when its op type is in ``op_types`` and its name starts with one of
    ``node_prefixes`` (the same selection :class:`Quantise` makes), so a node the family did not
    name -- statistics, squares, small constants, the head -- stays fp32 by default. The model's
    inputs and outputs stay float32 (the entry's I/O contract). ``rationale`` says what is kept
    fp32 and why (fp16 overflows above 65504; constants below 6e-8 round to 0).

    The gate passes when the upper end of the bootstrap 95% interval of 1 - PLCC(fp32, fp16) is
    within ``budget_plcc`` *and* the largest |fp16 - fp32| score error is within ``max_abs_error``.
    """

    op_types: tuple[str, ...]
    node_prefixes: tuple[str, ...]
    rationale: str
    budget_plcc: float = 1e-4
    max_abs_error: float = 1e-3
    gate_pairs: int = 48  # per size
    gate_sizes: tuple[tuple[int, int], ...] = ((64, 64), (96, 96), (72, 120), (120, 88))


@dataclass(frozen=True)
class NotFp16:
    """The family has no fp16 sibling, and why (``tinyreg quantize --mode fp16`` refuses with this reason)."""

    reason: str


@dataclass(frozen=True)
class Parity:
    """How close the ONNX graph must be to the reference, and the default parity run."""

    tolerance: float = 1e-5  # max |onnx - reference| over the samples
    identical_tolerance: float = 1e-6  # max |onnx(x, x) - identical_score|
    pairs: int = 20
    sizes: tuple[tuple[int, int], ...] = ((256, 256),)


class Reference(Protocol):
    """A reference implementation of the metric, for parity."""

    name: str  # the call and package version, e.g. "pkg.Metric(variant='x') (pkg 1.2)"

    def score(self, sample: Sample) -> float: ...


def onnx_ops(*op_types: str) -> frozenset[tuple[str, str]]:
    """A declared op set in the default ONNX domain."""
    return frozenset(("ai.onnx", op) for op in op_types)


class Family(abc.ABC):
    """Subclass, set the class attributes, implement :meth:`build`; override the rest as needed."""

    meta: ClassVar[Metadata]
    contract: ClassVar[Contract]
    ops: ClassVar[frozenset[tuple[str, str]]]  # exactly the (domain, op) set of every graph build() returns
    quant: ClassVar[Quantise | NotQuantised]
    fp16: ClassVar[Fp16 | NotFp16] = NotFp16("the family declares no fp16 precision policy")
    weights: ClassVar[tuple[WeightFile, ...]] = ()
    parity: ClassVar[Parity | None] = None  # None: the family has no reference implementation
    smoke_seed: ClassVar[int] = 0
    placeholder_for: ClassVar[str] = ""  # what a smoke placeholder stands in for
    version: ClassVar[int] = 1  # bump when build() output changes; recorded in provenance
    score_memory: ClassVar[MemoryModel | None] = None  # scoring refuses sizes whose estimate exceeds the memory available

    @property
    def name(self) -> str:
        return self.meta.name

    @abc.abstractmethod
    def build(self, weights: Weights | None, opset: int) -> Any:
        """An ``onnx.ModelProto`` built from verified weight bytes, or the smoke placeholder for ``None``.

        Must be deterministic: the same arguments give the same bytes on every machine.
        """

    def feeds(self, sample: Sample) -> dict[str, np.ndarray]:
        """Model inputs for one sample (default: each image role as [1, 3, H, W] per the conventions)."""
        conv = self.contract.conventions
        out = {}
        for t in self.contract.inputs:
            img = sample.images[t.name]
            if conv.get("normalisation") == "imagenet":
                out[t.name] = imagenet_nchw(img, conv["mean"], conv["std"])
            else:
                out[t.name] = rgb_nchw(img)
        return out

    def samples(self, n: int, size: tuple[int, int], seed: int) -> Iterator[Sample]:
        """``n`` representative inputs of ``size`` (h, w) (default: natural images under real distortions)."""
        return natural_pairs(n, size, seed)

    def reference(self, weights: Weights | None) -> Reference:
        """The reference implementation on the same weights (only when ``parity`` is declared)."""
        raise NotImplementedError(f"family '{self.name}' has no reference implementation")


# -- helpers families share ------------------------------------------------------------------


def rgb_nchw(x: np.ndarray) -> np.ndarray:
    """HxWx3 -> 1x3xHxW float32."""
    return np.ascontiguousarray(np.asarray(x).transpose(2, 0, 1)[None], dtype=np.float32)


def imagenet_nchw(x: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    """HxWx3 [0,1] RGB -> 1x3xHxW normalised, float32."""
    from registry.media.images import imagenet_nchw as _imagenet

    return _imagenet(x, list(mean), list(std))


def bt601_luma(x: np.ndarray) -> np.ndarray:
    """HxWx3 [0,1] RGB -> HxW float32 luma, Y = 0.299 R + 0.587 G + 0.114 B (computed in float64)."""
    a = np.asarray(x, np.float64)
    y = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    return np.asarray(y, np.float32)


def natural_pairs(n: int, size: tuple[int, int], seed: int) -> Iterator[Sample]:
    """``n`` natural images (scikit-image's set) and their distortions (blur, noise, JPEG, contrast, shift)."""
    from registry.media.images import fr_pairs

    for pair in fr_pairs(n, size, seed):
        yield Sample(pair.name, {"ref": pair.ref, "dist": pair.dist})


def reference_name(call: str, package: str) -> str:
    """``call (package version)``: how a parity record names the reference implementation."""
    from importlib import metadata

    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        version = "?"
    return f"{call} ({package} {version})"


def load_torch_weights(data: bytes, what: str) -> Any:
    """Pinned bytes of a torch file -> its tensors, with ``torch.load(weights_only=True)`` (never unpickles code)."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency(f"reading {what}", "export") from exc
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad pickles; never unpickle arbitrary code
        raise InputError(f"{what}: not a weights-only torch file ({exc.__class__.__name__})") from exc

