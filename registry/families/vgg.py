"""VGG-16 feature stack shared by the DISTS and LPIPS families (no torchvision).

Works on torchvision-format state dicts (``features.N.weight``/``features.N.bias``)
held as numpy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from registry.plugin import GraphBuilder, InputError, WeightFile

# torchvision vgg16().features conv indices, grouped into the five stages
# that end at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
VGG16_STAGES: tuple[tuple[int, ...], ...] = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
VGG16_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 512)
VGG16_CONV_INDICES: tuple[int, ...] = tuple(i for s in VGG16_STAGES for i in s)

VGG16 = WeightFile(
    key="vgg16",
    name="vgg16-397923af.pth",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
    license="BSD-3-Clause (torchvision code); ImageNet-trained weights, see the ImageNet terms of access",
    filename="vgg16-397923af.pth",
    size=553433881,
)


def state_dict_keys() -> list[str]:
    return [f"features.{i}.{p}" for i in VGG16_CONV_INDICES for p in ("weight", "bias")]


def random_vgg(widths: Sequence[int], seed: int, in_ch: int = 3) -> dict[str, np.ndarray]:
    """Seeded random VGG-16-shaped conv weights (He-normal, float32)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    out: dict[str, np.ndarray] = {}
    c_in = in_ch
    for stage, width in zip(VGG16_STAGES, widths, strict=True):
        for idx in stage:
            fan_in = c_in * 9
            w = rng.standard_normal((width, c_in, 3, 3)) * np.sqrt(2.0 / fan_in)
            b = rng.standard_normal(width) * 0.01
            out[f"features.{idx}.weight"] = w.astype(np.float32)
            out[f"features.{idx}.bias"] = b.astype(np.float32)
            c_in = width
    return out


def stage_widths(state: Mapping[str, np.ndarray]) -> tuple[int, ...]:
    return tuple(int(state[f"features.{s[-1]}.weight"].shape[0]) for s in VGG16_STAGES)


def check_state_dict(state: Mapping[str, np.ndarray]) -> None:
    """Strict keys and consistent shapes, or ValueError naming the problem."""
    want = set(state_dict_keys())
    have = set(state)
    missing = sorted(want - have)
    extra = sorted(k for k in have - want if k.startswith("features."))
    if missing:
        raise ValueError(f"VGG-16 state dict lacks {missing[0]} (and {len(missing) - 1} more)")
    if extra:
        raise ValueError(f"VGG-16 state dict has unexpected key {extra[0]}")
    c_in = 3
    for idx in VGG16_CONV_INDICES:
        w = state[f"features.{idx}.weight"]
        b = state[f"features.{idx}.bias"]
        if w.ndim != 4 or w.shape[1] != c_in or w.shape[2:] != (3, 3) or b.shape != (w.shape[0],):
            raise ValueError(f"features.{idx}: unexpected shape {tuple(w.shape)} / {tuple(b.shape)}")
        c_in = w.shape[0]


def conv_relu(gb: GraphBuilder, x: str, state: Mapping[str, np.ndarray], idx: int) -> str:
    w = gb.const(f"features.{idx}.weight", state[f"features.{idx}.weight"])
    b = gb.const(f"features.{idx}.bias", state[f"features.{idx}.bias"])
    y = gb.op1("Conv", [x, w, b], name=f"conv{idx}", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    return gb.op1("Relu", [y], name=f"relu{idx + 1}")


def load_vgg16(data: bytes) -> dict[str, np.ndarray]:
    """torchvision-format VGG-16 state dict (pinned bytes) -> ``features.*`` arrays, strict keys."""
    from registry.plugin import load_torch_weights

    sd = load_torch_weights(data, "VGG-16 weights")
    if not isinstance(sd, dict):
        raise InputError("VGG-16 weights: expected a state dict")
    unexpected = sorted(k for k in sd if not str(k).startswith(("features.", "classifier.")))
    if unexpected:
        raise InputError(f"VGG-16 weights: unexpected key {unexpected[0]}")
    state = {k: sd[k].detach().cpu().numpy().astype(np.float32) for k in sd if str(k).startswith("features.")}
    try:
        check_state_dict(state)
    except ValueError as exc:
        raise InputError(f"VGG-16 weights: {exc}") from exc
    return state
