"""LPIPS (Zhang, Isola, Efros, Shechtman, Wang, CVPR 2018), VGG-16 variant.

The graph: ImageNet-normalised input -> LPIPS scaling layer (folded into one
affine) -> VGG-16 with max-pools, tapped at relu1_2 .. relu5_3 -> unit
normalisation over channels (eps 1e-10) -> squared difference -> 1x1 linear
layer (no bias) -> spatial mean -> sum over stages -> scalar distance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from registry.families.vgg import VGG16, VGG16_STAGES, conv_relu, random_vgg, stage_widths
from registry.plugin import (
    IMAGENET_MEAN,
    IMAGENET_RGB_CONVENTIONS,
    IMAGENET_STD,
    Direction,
    Family,
    Fp16,
    GraphBuilder,
    InputError,
    Kind,
    MemoryModel,
    Metadata,
    Parity,
    Quantise,
    Reference,
    Sample,
    WeightFile,
    Weights,
    full_reference_contract,
    load_torch_weights,
    onnx_ops,
    reference_name,
)

SMOKE_WIDTHS = (4, 8, 16, 16, 16)
SMOKE_SEED = 20180601
# lpips.ScalingLayer: maps [-1, 1] input to the VGG convention
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10

LIN = WeightFile(
    key="lin",
    name="LPIPS v0.1 vgg.pth (linear layers)",
    url="https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/vgg.pth",
    sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    license="BSD-2-Clause",
    filename="lpips-v0.1-vgg.pth",
    size=7289,
)

OPS = onnx_ops("Add", "Concat", "Conv", "Div", "MaxPool", "Mul", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Slice", "Sqrt", "Sub")


def build_lpips(
    state: Mapping[str, np.ndarray], lins: Sequence[np.ndarray], *, opset: int = 17, doc: str = "LPIPS",
    metadata: dict[str, str] | None = None,
) -> Any:
    widths = stage_widths(state)
    gb = GraphBuilder(opset)
    x = gb.op1("Concat", ["ref", "dist"], name="batch", axis=0)
    mean = np.asarray(IMAGENET_MEAN, np.float64)
    std = np.asarray(IMAGENET_STD, np.float64)
    shift = np.asarray(LPIPS_SHIFT, np.float64)
    scale = np.asarray(LPIPS_SCALE, np.float64)
    # n -> x01 = n*std + mean -> x11 = 2*x01 - 1 -> (x11 - shift) / scale
    a = gb.const("scaling.mul", (2 * std / scale).astype(np.float32).reshape(1, 3, 1, 1))
    b = gb.const("scaling.add", ((2 * mean - 1 - shift) / scale).astype(np.float32).reshape(1, 3, 1, 1))
    h = gb.op1("Add", [gb.op1("Mul", [x, a]), b], name="scaling")
    eps = gb.const("eps", np.float32(EPS))
    total = None
    for k, (convs, width) in enumerate(zip(VGG16_STAGES, widths, strict=True)):
        if k > 0:
            h = gb.op1("MaxPool", [h], name=f"pool{k}", kernel_shape=[2, 2], strides=[2, 2])
        for idx in convs:
            h = conv_relu(gb, h, state, idx)
        norm = gb.op1("Sqrt", [gb.reduce("ReduceSum", gb.op1("Mul", [h, h]), [1])])
        unit = gb.op1("Div", [h, gb.op1("Add", [norm, eps])])
        f0, f1 = gb.split2(unit)
        d = gb.op1("Sub", [f0, f1])
        lin = gb.const(f"lin{k}.weight", np.asarray(lins[k], np.float32).reshape(1, width, 1, 1))
        val = gb.spatial_mean(gb.op1("Conv", [gb.op1("Mul", [d, d]), lin], kernel_shape=[1, 1]))
        total = val if total is None else gb.op1("Add", [total, val], name=f"acc{k}")
    assert total is not None
    shape = gb.const("scalar_shape", np.zeros((0,), np.int64), np.int64)
    gb.op("Reshape", [total, shape], 1, name="score_reshape")
    gb.nodes[-1].output[0] = "score"
    return gb.build([("ref", [1, 3, "H", "W"]), ("dist", [1, 3, "H", "W"])], [("score", [])], "lpips", doc, metadata)


def build_smoke(opset: int = 17) -> Any:
    state = random_vgg(SMOKE_WIDTHS, SMOKE_SEED)
    rng = np.random.Generator(np.random.PCG64(SMOKE_SEED + 1))
    lins = [np.abs(rng.normal(0.1, 0.05, w)).astype(np.float32) for w in SMOKE_WIDTHS]
    return build_lpips(
        state, lins, opset=opset,
        doc="SMOKE PLACEHOLDER: LPIPS-VGG graph structure with seeded random weights. Not a quality metric.",
        metadata={"tinyreg.family": "lpips", "tinyreg.smoke": "true", "tinyreg.seed": str(SMOKE_SEED)},
    )


def load_lins(data: bytes, widths: tuple[int, ...]) -> list[np.ndarray]:
    """The v0.1 linear layers (one [C] vector per stage) from pin-checked bytes; strict keys and shapes."""
    sd = load_torch_weights(data, "LPIPS linear layers")
    want = {f"lin{k}.model.1.weight" for k in range(len(widths))}
    if not isinstance(sd, dict) or set(sd) != want:
        keys = sorted(sd) if isinstance(sd, dict) else type(sd).__name__
        raise InputError(f"LPIPS linear layers: expected exactly {sorted(want)} (got {keys})")
    out = []
    for k, w in enumerate(widths):
        t = sd[f"lin{k}.model.1.weight"]
        if tuple(t.shape) != (1, w, 1, 1):
            raise InputError(f"LPIPS lin{k}: shape {tuple(t.shape)}, backbone needs (1, {w}, 1, 1)")
        out.append(t.float().numpy().reshape(-1).copy())
    return out


def load(weights: Weights) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    from registry.families.vgg import load_vgg16

    state = load_vgg16(weights[VGG16.key])
    return state, load_lins(weights[LIN.key], stage_widths(state))


class _LpipsReference:
    def __init__(self, weights: Weights) -> None:
        from registry.families.lpips.reference import reference_model

        state, _ = load(weights)  # strict checks before the reference sees the file
        self.model = reference_model(state, weights[LIN.key])
        self.name = reference_name("lpips.LPIPS(net='vgg', version='0.1')", "lpips")

    def score(self, sample: Sample) -> float:
        from registry.families.lpips.reference import reference_score

        return reference_score(self.model, sample.images["ref"], sample.images["dist"])


class Lpips(Family):
    meta = Metadata(
        name="lpips",
        default_id="lpips_vgg16",
        kind=Kind.FULL_REFERENCE,
        title="LPIPS (VGG-16)",
        description="LPIPS full-reference perceptual distance: unit-normalised VGG-16 feature differences, learned linear weights.",
        citation="Zhang, Isola, Efros, Shechtman, Wang. The Unreasonable Effectiveness of Deep Features as a Perceptual Metric. "
        "CVPR 2018.",
        license="BSD-2-Clause",
        license_url="https://github.com/richzhang/PerceptualSimilarity/blob/master/LICENSE",
        license_notes="LPIPS code and linear-layer weights: BSD-2-Clause. VGG-16 backbone: torchvision ImageNet weights.",
        score_meaning="LPIPS distance; 0 for identical images, larger is worse",
        direction=Direction.LOWER_IS_BETTER,
        identical_score=0.0,
    )
    contract = full_reference_contract(3, IMAGENET_RGB_CONVENTIONS)
    ops = OPS
    weights = (VGG16, LIN)
    parity = Parity(tolerance=1e-5, identical_tolerance=1e-6)
    # peak RSS scoring one pair, full-size fp32 graph (python -m bench.memory, 2 threads):
    # 281 / 426 / 1116 / 3589 MiB at 128x128 / 256x256 / 960x540 / 1920x1080 (fit: 292 MiB + 1667 B/px)
    score_memory = MemoryModel(base=384 << 20, per_pixel=1750)
    smoke_seed = SMOKE_SEED
    placeholder_for = "LPIPS v0.1 with VGG-16 ImageNet weights and the published linear layers"
    quant = Quantise(op_types=("Conv",), node_prefixes=("conv",), budget_plcc=0.01, rationale=(
        'Only the 13 VGG-16 backbone convolutions are quantised (static QDQ). Channel normalisation, squared '
        'differences, the learned 1x1 linear layers and the spatial means stay fp32.'
    ))
    fp16 = Fp16(op_types=("Conv", "Relu", "MaxPool"), node_prefixes=("conv", "relu", "pool"), rationale=(
        "Only the VGG-16 backbone (its 13 convolutions, their ReLUs and the max-pools) runs in fp16. Channel "
        "unit-normalisation (a sum of squared features, which overflows fp16 above 65504, and a 1e-10 epsilon, which "
        "rounds to 0 in fp16), squared differences, the learned 1x1 linear layers and the spatial means stay fp32."
    ))

    def build(self, weights: Weights | None, opset: int) -> Any:
        if weights is None:
            return build_smoke(opset)
        state, lins = load(weights)
        return build_lpips(state, lins, opset=opset, doc="LPIPS v0.1 (Zhang et al., CVPR 2018), VGG-16 backbone.")

    def reference(self, weights: Weights | None) -> Reference:
        if weights is None:
            raise ValueError("the LPIPS reference needs the entry's weights")
        return _LpipsReference(weights)


FAMILY = Lpips()

__all__ = ["FAMILY"]
