"""Run the reference ``DISTS_pytorch.DISTS`` forward, unchanged, on given weights.

The reference module imports torchvision only to build VGG-16. torchvision is
not installed here (it pulls a CUDA torch), so a minimal stand-in module that
provides ``models.vgg16(...).features`` with the torchvision layer layout is
registered under the name ``torchvision`` before the reference is imported.
The reference's own arithmetic runs as published.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import MissingDependency
from registry.families.vgg import VGG16_CONV_INDICES


def installed_alpha_beta() -> Path | None:
    """``weights.pt`` shipped inside the installed dists-pytorch package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("DISTS_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "weights.pt"
    return path if path.is_file() else None


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


def reference_model(state: Mapping[str, np.ndarray], alpha: np.ndarray, beta: np.ndarray) -> Any:
    """``DISTS_pytorch.DISTS`` with VGG weights ``state`` and raw ``alpha``/``beta``."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency("the DISTS reference forward", "export") from exc
    saved = {k: sys.modules.get(k) for k in ("torchvision", "torchvision.models", "torchvision.transforms")}
    _install_standin(state)
    try:
        sys.modules.pop("DISTS_pytorch.DISTS_pt", None)
        sys.modules.pop("DISTS_pytorch", None)
        try:
            from DISTS_pytorch.DISTS_pt import DISTS
        except ImportError as exc:
            raise MissingDependency("the DISTS reference forward (package dists-pytorch)", "export") from exc
        model = DISTS(load_weights=False)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    with torch.no_grad():
        model.alpha.data = torch.from_numpy(np.asarray(alpha, np.float32).reshape(1, -1, 1, 1)).clone()
        model.beta.data = torch.from_numpy(np.asarray(beta, np.float32).reshape(1, -1, 1, 1)).clone()
    return model.eval()


def reference_score(model: Any, ref01: np.ndarray, dist01: np.ndarray) -> float:
    """Reference score for [0,1] RGB images given as HxWx3 or 1x3xHxW float arrays."""
    import torch

    def to_t(a: np.ndarray) -> Any:
        a = np.asarray(a, np.float32)
        if a.ndim == 3:
            a = a.transpose(2, 0, 1)[None]
        return torch.from_numpy(np.ascontiguousarray(a))

    with torch.no_grad():
        return float(model(to_t(ref01), to_t(dist01)))
