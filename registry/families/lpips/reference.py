"""Run the reference ``lpips.LPIPS(net='vgg', version='0.1')`` forward, unchanged, on given weights."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from registry.families.torchvision_standin import torchvision_standin
from registry.plugin import MissingDependency


def reference_model(state: Mapping[str, np.ndarray], lin_bytes: bytes) -> Any:
    """``lpips.LPIPS`` with VGG weights ``state`` and the (already pin-checked) linear-layer file bytes."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("the LPIPS reference forward", "export") from exc
    with torchvision_standin(state, reimport="lpips"), tempfile.TemporaryDirectory() as d:
        try:
            import lpips
        except ImportError as exc:
            raise MissingDependency("the LPIPS reference forward (package lpips 0.1.4, installed by make install)", "export") from exc
        path = Path(d) / "lin.pth"
        path.write_bytes(lin_bytes)
        model = lpips.LPIPS(net="vgg", version="0.1", pretrained=True, model_path=str(path), pnet_rand=False, verbose=False)
    return model.eval()


def reference_score(model: Any, ref01: np.ndarray, dist01: np.ndarray) -> float:
    """Reference LPIPS for [0,1] RGB HxWx3 images (the package's ``normalize=True`` path)."""
    import torch

    def to_t(a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(np.asarray(a, np.float32).transpose(2, 0, 1)[None]))

    with torch.no_grad():
        return float(model(to_t(ref01), to_t(dist01), normalize=True))
