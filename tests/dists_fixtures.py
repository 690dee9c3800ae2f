"""Seeded random VGG-16 backbones plus the real DISTS alpha/beta from the installed package."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from registry.families.vgg import VGG16_WIDTHS, random_vgg


def alpha_beta_path() -> Path:
    from registry.families.dists.reference import installed_alpha_beta

    path = installed_alpha_beta()
    assert path is not None, "dists-pytorch is part of the 'export' extra that make test installs"
    return path


def write_random_vgg(path: Path, seed: int = 7, widths: tuple[int, ...] = VGG16_WIDTHS, extra: dict[str, object] | None = None,
                     drop: str | None = None) -> str:
    import torch

    sd: dict[str, object] = {k: torch.from_numpy(v) for k, v in random_vgg(widths, seed).items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # torchvision files carry the classifier too
    if drop:
        sd.pop(drop)
    sd.update(extra or {})
    torch.save(sd, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reference_inputs(seed: int = 0, hw: tuple[int, int] = (48, 40)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((*hw, 3), dtype=np.float32)
    return x, np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1).astype(np.float32)


def lin_path() -> Path:
    """LPIPS v0.1 VGG linear layers shipped inside the installed lpips package."""
    import importlib.util

    spec = importlib.util.find_spec("lpips")
    assert spec is not None and spec.submodule_search_locations, "lpips==0.1.4 is installed by make install (--no-deps)"
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / "vgg.pth"
