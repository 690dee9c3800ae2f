"""A minimal ``torchvision`` stand-in so reference implementations run unchanged without torchvision.

torchvision is not installed (it pulls a CUDA torch). Reference packages such as
dists-pytorch and lpips import it only to build VGG-16, so a stand-in module that
provides ``models.vgg16(...).features`` with torchvision's layer layout and the
given weights is registered while the reference is imported and built.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from registry.families.vgg import VGG16_CONV_INDICES


def _vgg16_features(state: Mapping[str, np.ndarray]) -> Any:
    import torch
    from torch import nn

    layers: list[nn.Module] = []
    c_in = 3
    pools = {4, 9, 16, 23, 30}
    for i in range(31):
        if i in pools:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif i in VGG16_CONV_INDICES:
            w = state[f"features.{i}.weight"]
            conv = nn.Conv2d(c_in, w.shape[0], kernel_size=3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.asarray(w, np.float32)))
                conv.bias.copy_(  # type: ignore[union-attr]
                    torch.from_numpy(np.asarray(state[f"features.{i}.bias"], np.float32)))
            layers.append(conv)
            c_in = w.shape[0]
        else:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _install_standin(state: Mapping[str, np.ndarray]) -> None:
    tv = types.ModuleType("torchvision")
    models = types.ModuleType("torchvision.models")
    transforms = types.ModuleType("torchvision.transforms")

    class _VGG:
        def __init__(self) -> None:
            self.features = _vgg16_features(state)

    def vgg16(pretrained: bool = False, **_: Any) -> _VGG:
        return _VGG()

    models.vgg16 = vgg16  # type: ignore[attr-defined]
    tv.models = models  # type: ignore[attr-defined]
    tv.transforms = transforms  # type: ignore[attr-defined]
    sys.modules["torchvision"] = tv
    sys.modules["torchvision.models"] = models
    sys.modules["torchvision.transforms"] = transforms


@contextmanager
def torchvision_standin(state: Mapping[str, np.ndarray], reimport: str) -> Iterator[None]:
    """Stand-in installed; modules under ``reimport`` re-imported so they bind to it."""
    names = ("torchvision", "torchvision.models", "torchvision.transforms")
    saved = {k: sys.modules.get(k) for k in names}
    _install_standin(state)
    for mod in [m for m in sys.modules if m == reimport or m.startswith(reimport + ".")]:
        sys.modules.pop(mod, None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
