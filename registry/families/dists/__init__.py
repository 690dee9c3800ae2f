"""DISTS (Ding, Ma, Wang, Simoncelli, PAMI 2020) on a VGG-16 backbone."""

from __future__ import annotations

from typing import Any

import numpy as np

from registry.families.vgg import VGG16
from registry.plugin import (
    IMAGENET_RGB_CONVENTIONS,
    Direction,
    Family,
    Fp16,
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
    onnx_ops,
    reference_name,
)

SMOKE_WIDTHS = (4, 8, 16, 16, 16)
SMOKE_SEED = 20200101

ALPHA_BETA = WeightFile(
    key="alpha_beta",
    name="DISTS weights.pt (alpha, beta)",
    url="https://raw.githubusercontent.com/dingkeyan93/DISTS/master/DISTS_pytorch/weights.pt",
    sha256="f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
    license="MIT",
    filename="weights.pt",
    size=12288,
)

OPS = onnx_ops("Add", "Concat", "Conv", "Div", "Mul", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Slice", "Sqrt", "Sub")


def build_smoke(opset: int = 17) -> Any:
    """Random-weight DISTS at tiny widths; byte-identical for a given opset."""
    from registry.families.dists.graph import build_dists, normalise_weights
    from registry.families.vgg import random_vgg

    state = random_vgg(SMOKE_WIDTHS, SMOKE_SEED)
    n = 3 + sum(SMOKE_WIDTHS)
    rng = np.random.Generator(np.random.PCG64(SMOKE_SEED + 1))
    alpha = np.abs(rng.normal(0.1, 0.01, n)).astype(np.float32)
    beta = np.abs(rng.normal(0.1, 0.01, n)).astype(np.float32)
    a, b = normalise_weights(alpha, beta)
    return build_dists(
        state,
        a,
        b,
        opset=opset,
        doc="SMOKE PLACEHOLDER: DISTS graph structure with seeded random weights. Not a quality metric.",
        metadata={"tinyreg.family": "dists", "tinyreg.smoke": "true", "tinyreg.seed": str(SMOKE_SEED)},
    )


def load(weights: Weights) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, float]:
    """VGG-16 state, raw alpha, beta and their sum, from pin-checked bytes."""
    from registry.families.dists.weights import load_alpha_beta
    from registry.families.vgg import load_vgg16, stage_widths

    state = load_vgg16(weights[VGG16.key])
    alpha, beta, w_sum = load_alpha_beta(weights[ALPHA_BETA.key], 3 + sum(stage_widths(state)))
    return state, alpha, beta, w_sum


class _DistsReference:
    def __init__(self, weights: Weights) -> None:
        from registry.families.dists.reference import reference_model

        state, alpha, beta, _ = load(weights)
        self.model = reference_model(state, alpha, beta)
        self.name = reference_name("DISTS_pytorch.DISTS", "dists-pytorch")

    def score(self, sample: Sample) -> float:
        from registry.families.dists.reference import reference_score

        return reference_score(self.model, sample.images["ref"], sample.images["dist"])


class Dists(Family):
    meta = Metadata(
        name="dists",
        default_id="dists_vgg16",
        kind=Kind.FULL_REFERENCE,
        title="DISTS (VGG-16)",
        description="DISTS full-reference image quality: structure and texture similarity of VGG-16 features.",
        citation="Ding, Ma, Wang, Simoncelli. Image Quality Assessment: Unifying Structure and Texture Similarity. IEEE TPAMI 2020.",
        license="MIT",
        license_url="https://github.com/dingkeyan93/DISTS/blob/master/LICENSE",
        license_notes=(
            "DISTS code and alpha/beta weights: MIT. The VGG-16 backbone weights are torchvision's "
            "ImageNet-trained checkpoint (vgg16-397923af.pth), subject to the ImageNet terms of access."
        ),
        score_meaning="distance = 1 - similarity; 0 for identical images, larger is worse",
        direction=Direction.LOWER_IS_BETTER,
        identical_score=0.0,
    )
    contract = full_reference_contract(3, IMAGENET_RGB_CONVENTIONS)
    ops = OPS
    weights = (VGG16, ALPHA_BETA)
    parity = Parity(tolerance=1e-5, identical_tolerance=1e-6)
    # peak RSS scoring one pair, full-size fp32 graph (python -m bench.memory, 2 threads):
    # 317 / 365 / 1104 / 3528 MiB at 128x128 / 256x256 / 960x540 / 1920x1080 (fit: 296 MiB + 1634 B/px)
    score_memory = MemoryModel(base=384 << 20, per_pixel=1700)
    smoke_seed = SMOKE_SEED
    placeholder_for = "DISTS with VGG-16 ImageNet weights and the published alpha/beta (dists-pytorch 0.1)"
    quant = Quantise(op_types=("Conv",), node_prefixes=("conv",), budget_plcc=0.005, rationale=(
        'Only the 13 VGG-16 backbone convolutions are quantised (static QDQ, per-channel int8 weights, uint8 '
        'activations). L2 pooling, the per-channel mean/variance/covariance statistics and the similarity '
        'head stay fp32: with c1 = c2 = 1e-6 they divide small differences of feature statistics, and 8-bit '
        'activations there destroy the metric (measured on a random-VGG DISTS with the real alpha/beta, 40 '
        'natural pairs: every op quantised 1 - PLCC = 0.57; backbone only 0.0015).'
    ))
    fp16 = Fp16(op_types=("Conv", "Relu"), node_prefixes=("conv", "relu"), rationale=(
        "Only the 13 VGG-16 backbone convolutions and their ReLUs run in fp16 (fp32 in and out of the backbone). "
        "L2 pooling (it squares feature values, which overflows fp16 above 65504, and adds a 1e-12 epsilon, which "
        "rounds to 0 in fp16), the per-channel mean/variance/covariance statistics (squares and products of "
        "features) and the similarity head (c1 = c2 = 1e-6, below fp16's normal range) stay fp32."
    ))

    def build(self, weights: Weights | None, opset: int) -> Any:
        if weights is None:
            return build_smoke(opset)
        from registry.families.dists.graph import build_dists, normalise_weights

        state, alpha, beta, w_sum = load(weights)
        a, b = normalise_weights(alpha, beta, w_sum)
        return build_dists(state, a, b, opset=opset, doc="DISTS (Ding et al., TPAMI 2020), VGG-16 backbone. Output: 1 - similarity.")

    def reference(self, weights: Weights | None) -> Reference:
        if weights is None:
            raise ValueError("the DISTS reference needs the entry's weights")
        return _DistsReference(weights)


FAMILY = Dists()

__all__ = ["FAMILY"]
