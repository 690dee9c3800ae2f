"""The DISTS ONNX graph, built from weights (shared by smoke and real export).

Arithmetic follows the reference ``DISTS_pytorch.DISTS`` line by line:

* the network input is ImageNet-normalised; the reference normalises [0,1] RGB
  itself, and its stage-0 statistics are taken on the *un-normalised* image,
  so the graph reconstructs ``x = n * std + mean`` for stage 0;
* VGG-16 max-pools are replaced by L2 pooling: ``sqrt(conv(x^2, g) + 1e-12)``,
  depthwise, 3x3 Hann kernel ``outer([.5,1,.5])/4``, stride 2, padding 1;
* per stage and channel: ``S1 = (2 mx my + c1) / (mx^2 + my^2 + c1)``,
  ``S2 = (2 cov + c2) / (vx + vy + c2)`` with ``c1 = c2 = 1e-6``, variances
  two-pass ``mean((f - m)^2)`` as in the reference;
* covariance: the reference evaluates ``mean(fx fy) - mx my`` (one pass). In
  float32 that cancels on flat, bright channels: the reference itself scores
  identical copies of a dark, flat image (skimage ``moon``) at 1.2e-6. The
  graph uses the equal two-pass form ``mean((fx - mx)(fy - my))``. Measured on
  60 natural pairs (random VGG, real alpha/beta): max |onnx - reference| 6.0e-7
  (one-pass: 7.2e-7), max |onnx - float64 reference| 3.3e-7 (the float32
  reference itself: 3.8e-7), identical images 1.2e-7 (one-pass: 1.55e-6);
* spatial means are taken row-then-column (see GraphBuilder.spatial_mean);
* weights ``alpha, beta`` divided by ``sum(alpha) + sum(beta)``;
* ``score = 1 - (sum_k alpha_k . S1_k + sum_k beta_k . S2_k)`` as a scalar.

``ref`` and ``dist`` run through the backbone as one batch of two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from registry.families.vgg import VGG16_STAGES, conv_relu, stage_widths
from registry.plugin import IMAGENET_MEAN, IMAGENET_STD, GraphBuilder

C1 = 1e-6
C2 = 1e-6
L2POOL_EPS = 1e-12


def l2pool_filter(channels: int) -> np.ndarray:
    a = np.hanning(5)[1:-1]
    g = a[:, None] * a[None, :]
    g = (g / g.sum()).astype(np.float32)
    return np.ascontiguousarray(np.broadcast_to(g[None, None], (channels, 1, 3, 3)))


def normalise_weights(alpha: np.ndarray, beta: np.ndarray, w_sum: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """alpha/w_sum, beta/w_sum in float32, as the reference does at run time."""
    a = np.asarray(alpha, np.float32).reshape(-1)
    b = np.asarray(beta, np.float32).reshape(-1)
    s = np.float32(a.sum(dtype=np.float32) + b.sum(dtype=np.float32)) if w_sum is None else np.float32(w_sum)
    return (a / s).astype(np.float32), (b / s).astype(np.float32)


def _l2pool(gb: GraphBuilder, x: str, channels: int, idx: int) -> str:
    sq = gb.op1("Mul", [x, x], name=f"l2pool{idx}_sq")
    filt = gb.const(f"l2pool{idx}.filter", l2pool_filter(channels))
    y = gb.op1(
        "Conv", [sq, filt], name=f"l2pool{idx}_conv", group=channels, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]
    )
    eps = gb.const(f"l2pool{idx}.eps", np.float32(L2POOL_EPS))
    return gb.op1("Sqrt", [gb.op1("Add", [y, eps])], name=f"l2pool{idx}_sqrt")


def _similarity(gb: GraphBuilder, feat: str, k: int, alpha_k: np.ndarray, beta_k: np.ndarray) -> tuple[str, str]:
    """Weighted texture (S1) and structure (S2) sums for one stage, shape [1,1,1,1]."""
    m = gb.spatial_mean(feat)
    d = gb.op1("Sub", [feat, m])
    var = gb.spatial_mean(gb.op1("Mul", [d, d]))
    dx, dy = gb.split2(d)
    mx, my = gb.split2(m)
    vx, vy = gb.split2(var)
    # Two-pass covariance mean((fx-mx)(fy-my)): the reference's one-pass
    # mean(fx*fy) - mx*my cancels in float32 on flat, bright channels.
    cov = gb.spatial_mean(gb.op1("Mul", [dx, dy]))
    two = gb.const(f"stage{k}.two", np.float32(2.0))
    c1 = gb.const(f"stage{k}.c1", np.float32(C1))
    c2 = gb.const(f"stage{k}.c2", np.float32(C2))
    # S1 = (2*mx*my + c1) / (mx**2 + my**2 + c1), evaluated in the reference's order
    num1 = gb.op1("Add", [gb.op1("Mul", [gb.op1("Mul", [mx, two]), my]), c1])
    den1 = gb.op1("Add", [gb.op1("Add", [gb.op1("Mul", [mx, mx]), gb.op1("Mul", [my, my])]), c1])
    s1 = gb.op1("Div", [num1, den1])
    # S2 = (2*cov + c2) / (vx + vy + c2)
    num2 = gb.op1("Add", [gb.op1("Mul", [cov, two]), c2])
    den2 = gb.op1("Add", [gb.op1("Add", [vx, vy]), c2])
    s2 = gb.op1("Div", [num2, den2])
    n = alpha_k.shape[0]
    a = gb.const(f"stage{k}.alpha", alpha_k.reshape(1, n, 1, 1))
    b = gb.const(f"stage{k}.beta", beta_k.reshape(1, n, 1, 1))
    d1 = gb.reduce("ReduceSum", gb.op1("Mul", [a, s1]), [1])
    d2 = gb.reduce("ReduceSum", gb.op1("Mul", [b, s2]), [1])
    return d1, d2


def build_dists(
    state: Mapping[str, np.ndarray],
    alpha: np.ndarray,
    beta: np.ndarray,
    *,
    opset: int = 17,
    doc: str = "DISTS",
    metadata: dict[str, str] | None = None,
) -> object:
    """The DISTS graph for VGG-16 weights ``state`` and normalised ``alpha``/``beta``."""
    widths = stage_widths(state)
    chns: Sequence[int] = (3, *widths)
    if alpha.size != sum(chns) or beta.size != sum(chns):
        raise ValueError(f"alpha/beta have {alpha.size}/{beta.size} weights; the backbone needs {sum(chns)}")
    gb = GraphBuilder(opset)
    x = gb.op1("Concat", ["ref", "dist"], name="batch", axis=0)
    std = gb.const("imagenet.std", np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1))
    mean = gb.const("imagenet.mean", np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1))
    raw = gb.op1("Add", [gb.op1("Mul", [x, std], name="denorm_mul"), mean], name="denorm")
    feats = [raw]
    h = x
    pool_idx = (None, 4, 9, 16, 23)
    for stage, (convs, width_prev) in enumerate(zip(VGG16_STAGES, (3, *widths[:-1]), strict=True)):
        p = pool_idx[stage]
        if p is not None:
            h = _l2pool(gb, h, width_prev, p)
        for idx in convs:
            h = conv_relu(gb, h, state, idx)
        feats.append(h)
    offsets = np.cumsum((0, *chns))
    d1s, d2s = [], []
    for k, f in enumerate(feats):
        lo, hi = int(offsets[k]), int(offsets[k + 1])
        d1, d2 = _similarity(gb, f, k, alpha[lo:hi], beta[lo:hi])
        d1s.append(d1)
        d2s.append(d2)
    dist1, dist2 = d1s[0], d2s[0]
    for k in range(1, len(feats)):
        dist1 = gb.op1("Add", [dist1, d1s[k]], name=f"dist1_acc{k}")
        dist2 = gb.op1("Add", [dist2, d2s[k]], name=f"dist2_acc{k}")
    one = gb.const("one", np.float32(1.0))
    total = gb.op1("Add", [dist1, dist2], name="similarity")
    dist = gb.op1("Sub", [one, total], name="distance")
    scalar = gb.const("scalar_shape", np.zeros((0,), np.int64), np.int64)
    gb.op("Reshape", [dist, scalar], 1, name="score_reshape")
    gb.nodes[-1].output[0] = "score"
    return gb.build(
        [("ref", [1, 3, "H", "W"]), ("dist", [1, 3, "H", "W"])],
        [("score", [])],
        "dists",
        doc,
        metadata,
    )
