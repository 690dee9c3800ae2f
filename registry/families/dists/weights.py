"""Load DISTS upstream weights (pinned bytes in, numpy out) with torch.load(weights_only=True)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from registry.errors import InputError, MissingDependency
from registry.families.vgg import check_state_dict


def _torch_load(data: bytes, what: str) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency(f"reading {what}", "export") from exc
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad pickles; never unpickle arbitrary code
        raise InputError(f"{what}: not a weights-only torch file ({exc.__class__.__name__})") from exc


def load_vgg16(data: bytes) -> dict[str, np.ndarray]:
    """torchvision-format VGG-16 state dict -> ``features.*`` arrays (strict keys)."""
    sd = _torch_load(data, "VGG-16 weights")
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


def load_alpha_beta(data: bytes, n_channels: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Raw alpha, beta (flattened) and ``w_sum = alpha.sum() + beta.sum()`` as torch computes it."""
    sd = _torch_load(data, "DISTS alpha/beta")
    if not isinstance(sd, dict) or set(sd) != {"alpha", "beta"}:
        keys = sorted(sd) if isinstance(sd, dict) else type(sd).__name__
        raise InputError(f"DISTS alpha/beta: expected exactly keys alpha, beta (got {keys})")
    a, b = sd["alpha"], sd["beta"]
    if tuple(a.shape) != (1, n_channels, 1, 1) or tuple(b.shape) != (1, n_channels, 1, 1):
        raise InputError(f"DISTS alpha/beta: shapes {tuple(a.shape)}/{tuple(b.shape)}, backbone needs (1, {n_channels}, 1, 1)")
    w_sum = float(a.float().sum() + b.float().sum())
    return a.float().numpy().reshape(-1).copy(), b.float().numpy().reshape(-1).copy(), w_sum
