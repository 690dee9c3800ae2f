"""Per-frame curves that stay readable with many frames: bucketed, keeping each bucket's extremes."""

from __future__ import annotations

import itertools

import numpy as np


def downsample(x: np.ndarray, y: np.ndarray, points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``points`` (x, y) pairs drawing the same curve: each bucket keeps its min and its max, in frame order.

    Every extreme of the curve survives (the global min and max always, a one-frame spike too).
    NaN scores are dropped (the report lists them apart); infinities are kept for the caller to clip.
    """
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    n = len(y)
    if n <= points:
        return x, y
    buckets = max(1, points // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    idx: list[int] = []
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        seg = y[a:b]
        lo, hi = a + int(np.argmin(seg)), a + int(np.argmax(seg))
        idx += sorted({lo, hi})
    sel = np.asarray(idx, dtype=np.int64)
    return x[sel], y[sel]
