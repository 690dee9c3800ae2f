"""Separable bicubic resizing of RGB frames (Keys a = -0.5, antialiased when shrinking, as Pillow does)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    return np.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


@lru_cache(maxsize=16)
def _weights(n_in: int, n_out: int) -> np.ndarray:
    """n_out x n_in matrix: row i holds the taps of output sample i (edges clamped, rows sum to 1)."""
    scale = n_in / n_out
    support = 2.0 * max(scale, 1.0)
    centres = (np.arange(n_out) + 0.5) * scale
    m = np.zeros((n_out, n_in), np.float64)
    for i, c in enumerate(centres):
        lo, hi = int(np.floor(c - support)), int(np.ceil(c + support))
        taps = np.arange(lo, hi + 1)
        w = _cubic((taps + 0.5 - c) / max(scale, 1.0))
        np.add.at(m[i], np.clip(taps, 0, n_in - 1), w)
        m[i] /= m[i].sum()
    return m.astype(np.float32)


def resize_rgb(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """HxWx3 float32 [0, 1] -> h x w x 3, bicubic, clipped to [0, 1]."""
    if x.shape[:2] == (h, w):
        return x
    wy, wx = _weights(x.shape[0], h), _weights(x.shape[1], w)
    out = np.einsum("ij,jkc->ikc", wy, x, optimize=True)
    out = np.einsum("kl,ilc->ikc", wx, out, optimize=True)
    res: np.ndarray = np.clip(out, 0.0, 1.0).astype(np.float32)
    return res
