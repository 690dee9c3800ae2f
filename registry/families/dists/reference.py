"""Run the reference ``DISTS_pytorch.DISTS`` forward, unchanged, on given weights.

The reference module imports torchvision only to build VGG-16; see
``registry.families.torchvision_standin``. The reference's own arithmetic runs as published.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from registry.families.torchvision_standin import torchvision_standin
from registry.plugin import MissingDependency


def installed_alpha_beta() -> Path | None:
    """``weights.pt`` shipped inside the installed dists-pytorch package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("DISTS_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "weights.pt"
    return path if path.is_file() else None


def reference_model(state: Mapping[str, np.ndarray], alpha: np.ndarray, beta: np.ndarray) -> Any:
    """``DISTS_pytorch.DISTS`` with VGG weights ``state`` and raw ``alpha``/``beta``."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency("the DISTS reference forward", "export") from exc
    with torchvision_standin(state, reimport="DISTS_pytorch"):
        try:
            from DISTS_pytorch.DISTS_pt import DISTS
        except ImportError as exc:
            raise MissingDependency("the DISTS reference forward (package dists-pytorch)", "export") from exc
        model = DISTS(load_weights=False)
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
