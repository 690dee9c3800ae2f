"""DISTS (Ding, Ma, Wang, Simoncelli, PAMI 2020) on a VGG-16 backbone."""

from __future__ import annotations

from typing import Any

import numpy as np

from registry.families.base import IMAGENET_RGB_CONVENTIONS, Family, MemoryModel, QuantPolicy, Upstream, fr_image_io
from registry.families.vgg import VGG16
from registry.media.images import representative_fr_pairs

SMOKE_WIDTHS = (4, 8, 16, 16, 16)
SMOKE_SEED = 20200101

ALPHA_BETA = Upstream(
    name="DISTS weights.pt (alpha, beta)",
    url="https://raw.githubusercontent.com/dingkeyan93/DISTS/master/DISTS_pytorch/weights.pt",
    sha256="f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
    license="MIT",
    filename="weights.pt",
    size=12288,
)

OPS = frozenset(
    ("ai.onnx", op)
    for op in ("Add", "Concat", "Conv", "Div", "Mul", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Split", "Sqrt", "Sub")
)


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


FAMILY = Family(
    name="dists",
    default_id="dists_vgg16",
    kind="fr",
    title="DISTS (VGG-16)",
    description="DISTS full-reference image quality: structure and texture similarity of VGG-16 features.",
    reference="Ding, Ma, Wang, Simoncelli. Image Quality Assessment: Unifying Structure and Texture Similarity. IEEE TPAMI 2020.",
    license="MIT",
    license_url="https://github.com/dingkeyan93/DISTS/blob/master/LICENSE",
    license_notes=(
        "DISTS code and alpha/beta weights: MIT. The VGG-16 backbone weights are torchvision's "
        "ImageNet-trained checkpoint (vgg16-397923af.pth), subject to the ImageNet terms of access."
    ),
    io=fr_image_io(),
    input_conventions={**IMAGENET_RGB_CONVENTIONS, "score": "distance = 1 - similarity; 0 for identical images, larger is worse"},
    score_convention="1 - similarity (larger = worse)",
    ops=OPS,
    smoke_seed=SMOKE_SEED,
    placeholder_for="DISTS with VGG-16 ImageNet weights and the published alpha/beta (dists-pytorch 0.1)",
    build_smoke=build_smoke,
    smoke_generator="tinyreg.families.dists.build_smoke/1",
    quant_accuracy_budget_plcc=0.005,
    upstream=(VGG16, ALPHA_BETA),
    # peak RSS scoring one pair, full-size fp32 graph (python -m bench.memory, 2 threads):
    # 317 / 365 / 1104 / 3528 MiB at 128x128 / 256x256 / 960x540 / 1920x1080 (fit: 296 MiB + 1634 B/px)
    score_memory=MemoryModel(base=384 << 20, per_pixel=1700),
    exporter="registry.families.dists.export:export",
    parity="registry.families.dists.parity:reference_for_entry",
    quant=QuantPolicy(op_types=("Conv",), node_prefixes=("conv",), rationale=(
        'Only the 13 VGG-16 backbone convolutions are quantised (static QDQ, per-channel int8 weights, uint8 '
        'activations). L2 pooling, the per-channel mean/variance/covariance statistics and the similarity '
        'head stay fp32: with c1 = c2 = 1e-6 they divide small differences of feature statistics, and 8-bit '
        'activations there destroy the metric (measured on a random-VGG DISTS with the real alpha/beta, 40 '
        'natural pairs: every op quantised 1 - PLCC = 0.57; backbone only 0.0015).'
    )),
    representative=representative_fr_pairs,
)
