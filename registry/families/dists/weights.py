"""Load the DISTS alpha/beta file (pinned bytes in, numpy out)."""

from __future__ import annotations

import numpy as np

from registry.plugin import InputError, load_torch_weights


def load_alpha_beta(data: bytes, n_channels: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Raw alpha, beta (flattened) and ``w_sum = alpha.sum() + beta.sum()`` as torch computes it."""
    sd = load_torch_weights(data, "DISTS alpha/beta")
    if not isinstance(sd, dict) or set(sd) != {"alpha", "beta"}:
        keys = sorted(sd) if isinstance(sd, dict) else type(sd).__name__
        raise InputError(f"DISTS alpha/beta: expected exactly keys alpha, beta (got {keys})")
    a, b = sd["alpha"], sd["beta"]
    if tuple(a.shape) != (1, n_channels, 1, 1) or tuple(b.shape) != (1, n_channels, 1, 1):
        raise InputError(f"DISTS alpha/beta: shapes {tuple(a.shape)}/{tuple(b.shape)}, backbone needs (1, {n_channels}, 1, 1)")
    w_sum = float(a.float().sum() + b.float().sum())
    return a.float().numpy().reshape(-1).copy(), b.float().numpy().reshape(-1).copy(), w_sum
