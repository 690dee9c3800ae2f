"""SSIM (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004) on luma: weight-free, the graph is the metric.

Exactly what ``skimage.metrics.structural_similarity(y_ref, y_dist, gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1.0)`` computes:

* luma: BT.601 ``Y = 0.299 R + 0.587 G + 0.114 B`` of RGB in [0, 1] for images; the Y plane
  itself, scaled to [0, 1], for Y4M video (``feeds``);
* local statistics under a Gaussian window, sigma 1.5, truncated at 3.5 sigma (11 x 11, taps
  normalised to sum 1), applied separably (11 x 1, then 1 x 11) with no padding: statistics
  over the valid region only;
* ``K1 = 0.01``, ``K2 = 0.03``, dynamic range 1: ``C1 = 1e-4``, ``C2 = 9e-4``; population
  (not sample) covariance;
* ``S = (2 ux uy + C1)(2 vxy + C2) / ((ux^2 + uy^2 + C1)(vx + vy + C2))``; the score is the
  mean of the SSIM map (a similarity: 1 for identical images, higher is better).

Float32 cancellation. ``vx = E[x^2] - E[x]^2`` loses the variance of flat, bright regions, and
``2 ux uy`` against ``ux^2 + uy^2`` (or ``2 vxy`` against ``vx + vy``) loses the small
difference that makes SSIM drop below 1. The graph therefore (a) subtracts each image's global
mean before forming second moments (variances do not change under a constant shift), and (b)
measures the difference image ``d = x - y`` directly: ``2 ux uy + C1 = B1 - E[d]^2`` and
``2 vxy + C2 = B2 - var(d)``, exact identities that keep the small terms small, so
``1 - S = (B1 var(d) + E[d]^2 (2 vxy + C2)) / (B1 B2)`` is formed without cancellation. Identical
inputs give ``d = 0``, so the map is exactly 1. The graph averages ``1 - S`` (small numbers)
rather than ``S``: a float32 mean of a map of values near 1 is off by up to 1e-5. Measured against the float64 reference:
see ``tinyreg parity`` and tests/families.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from registry.plugin import (
    LUMA_CONVENTIONS,
    Direction,
    Family,
    GraphBuilder,
    Kind,
    Metadata,
    NotFp16,
    NotQuantised,
    Parity,
    Reference,
    Sample,
    Weights,
    bt601_luma,
    full_reference_contract,
    natural_pairs,
    onnx_ops,
    reference_name,
)

SIGMA = 1.5
TRUNCATE = 3.5
RADIUS = int(TRUNCATE * SIGMA + 0.5)  # 5: an 11-tap window, as scipy.ndimage.gaussian_filter builds it
K1 = 0.01
K2 = 0.03
DATA_RANGE = 1.0
C1 = (K1 * DATA_RANGE) ** 2
C2 = (K2 * DATA_RANGE) ** 2

OPS = onnx_ops("Add", "Concat", "Conv", "Div", "Mul", "ReduceMean", "Reshape", "Slice", "Sub")
_STATS = 8  # x, y, x'^2, y'^2, d'^2, x', y', d' (x' = x - mean(x), d = x - y)


def gaussian_taps() -> np.ndarray:
    """The 1-D window: exp(-k^2 / (2 sigma^2)) for k = -5..5, normalised in float64 (scipy's kernel)."""
    k = np.arange(-RADIUS, RADIUS + 1, dtype=np.float64)
    g = np.exp(-0.5 / SIGMA**2 * k * k)
    out: np.ndarray = g / g.sum()
    return out


def build_ssim(opset: int = 17) -> Any:
    gb = GraphBuilder(opset)
    x, y = "ref", "dist"
    delta = gb.op1("Sub", [x, y], name="delta")
    m_delta = gb.spatial_mean(delta)
    xc = gb.op1("Sub", [x, gb.spatial_mean(x)], name="centre_ref")
    yc = gb.op1("Sub", [y, gb.spatial_mean(y)], name="centre_dist")
    dc = gb.op1("Sub", [delta, m_delta], name="centre_delta")
    stack = gb.op1("Concat", [x, y, gb.op1("Mul", [xc, xc], name="xx"), gb.op1("Mul", [yc, yc], name="yy"),
                              gb.op1("Mul", [dc, dc], name="dd"), xc, yc, dc], name="moments", axis=1)
    g = gaussian_taps().astype(np.float32)
    col = gb.const("window.col", np.broadcast_to(g.reshape(1, 1, -1, 1), (_STATS, 1, g.size, 1)))
    row = gb.const("window.row", np.broadcast_to(g.reshape(1, 1, 1, -1), (_STATS, 1, 1, g.size)))
    blur = gb.op1("Conv", [stack, col], name="window_cols", group=_STATS, kernel_shape=[g.size, 1])
    blur = gb.op1("Conv", [blur, row], name="window_rows", group=_STATS, kernel_shape=[1, g.size])
    ux, uy, exx, eyy, edd, ex, ey, ed = gb.unstack(blur, _STATS, axis=1, name="local")
    vx = gb.op1("Sub", [exx, gb.op1("Mul", [ex, ex])], name="var_ref")
    vy = gb.op1("Sub", [eyy, gb.op1("Mul", [ey, ey])], name="var_dist")
    vd = gb.op1("Sub", [edd, gb.op1("Mul", [ed, ed])], name="var_delta")  # = vx + vy - 2 vxy
    d = gb.op1("Add", [ed, m_delta], name="mean_delta")  # = ux - uy
    c1 = gb.const("c1", np.float32(C1))
    c2 = gb.const("c2", np.float32(C2))
    b1 = gb.op1("Add", [gb.op1("Add", [gb.op1("Mul", [ux, ux]), gb.op1("Mul", [uy, uy])]), c1], name="b1")
    b2 = gb.op1("Add", [gb.op1("Add", [vx, vy]), c2], name="b2")
    a2 = gb.op1("Sub", [b2, vd], name="a2")  # 2 vxy + C2
    # 1 - S = (B1 B2 - A1 A2) / (B1 B2) with A1 = B1 - d^2, A2 = B2 - vd: B1 vd + d^2 A2, no cancellation
    d2 = gb.op1("Mul", [d, d], name="d2")
    num = gb.op1("Add", [gb.op1("Mul", [b1, vd]), gb.op1("Mul", [d2, a2])], name="dissim_num")
    dissim = gb.op1("Div", [num, gb.op1("Mul", [b1, b2])], name="dissim_map")
    one = gb.const("one", np.float32(1.0))
    mean = gb.op1("Sub", [one, gb.spatial_mean(dissim)], name="mean_ssim")
    scalar = gb.const("scalar_shape", np.zeros((0,), np.int64), np.int64)
    gb.op("Reshape", [mean, scalar], 1, name="score_reshape")
    gb.nodes[-1].output[0] = "score"
    doc = ("SSIM (Wang et al., IEEE TIP 2004) on luma: Gaussian window sigma 1.5 (11x11), K1 0.01, K2 0.03, "
           "data range 1, valid region, mean SSIM. 1 = identical, higher is better.")
    return gb.build([("ref", [1, 1, "H", "W"]), ("dist", [1, 1, "H", "W"])], [("score", [])], "ssim", doc)


def luma(sample: Sample, role: str) -> np.ndarray:
    """The sample's Y plane for ``role``: the source's own (Y4M) or BT.601 luma of its RGB image."""
    if sample.luma is not None and role in sample.luma:
        return np.asarray(sample.luma[role], np.float32)
    return bt601_luma(sample.images[role])


class _SkimageReference:
    def __init__(self) -> None:
        from skimage.metrics import structural_similarity

        self._ssim = structural_similarity
        self.name = reference_name(
            "skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, "
            "data_range=1.0) on float64 luma", "scikit-image")

    def score(self, sample: Sample) -> float:
        a = luma(sample, "ref").astype(np.float64)
        b = luma(sample, "dist").astype(np.float64)
        value = self._ssim(a, b, gaussian_weights=True, sigma=SIGMA, use_sample_covariance=False,  # type: ignore[no-untyped-call]
                           data_range=DATA_RANGE)
        return float(value)


class Ssim(Family):
    meta = Metadata(
        name="ssim",
        default_id="ssim_luma",
        kind=Kind.FULL_REFERENCE,
        title="SSIM (luma, Gaussian 11x11)",
        description="SSIM full-reference image quality on luma (Gaussian window sigma 1.5, K1 0.01, K2 0.03, "
        "data range 1, valid region); weight-free: the graph is the metric.",
        citation="Wang, Bovik, Sheikh, Simoncelli. Image Quality Assessment: From Error Visibility to Structural "
        "Similarity. IEEE TIP 2004.",
        license="BSD-2-Clause",
        license_url="https://opensource.org/license/bsd-2-clause",
        license_notes="A formula, no weights: the graph is generated by tinyreg (BSD-2-Clause).",
        score_meaning="mean SSIM over the valid region; a similarity: 1 for identical images, higher is better",
        direction=Direction.HIGHER_IS_BETTER,
        identical_score=1.0,
    )
    contract = full_reference_contract(1, LUMA_CONVENTIONS, min_size=2 * RADIUS + 1)
    ops = OPS
    parity = Parity(tolerance=1e-5, identical_tolerance=1e-6, pairs=8, sizes=((97, 131), (64, 64), (33, 47), (11, 11)))
    quant = NotQuantised(
        "SSIM has no weights to quantise: the graph is two 11-tap window passes and per-pixel arithmetic on local "
        "moments, where the variance is a difference of second moments compared against C2 = 9e-4; 8-bit "
        "activations would erase exactly the small variances SSIM measures, and there is no large compute to save."
    )
    fp16 = NotFp16(
        "SSIM is refused in fp16: every node computes the local moments or compares them (variance = E[x^2] - E[x]^2 "
        "against C2 = 9e-4), where fp16's 11-bit mantissa cancels exactly the small variances SSIM measures; the "
        "two window convolutions are too little compute for half precision to be worth an error of that kind."
    )

    def build(self, weights: Weights | None, opset: int) -> Any:
        return build_ssim(opset)

    def feeds(self, sample: Sample) -> dict[str, np.ndarray]:
        return {role: np.ascontiguousarray(luma(sample, role)[None, None], np.float32) for role in ("ref", "dist")}

    def samples(self, n: int, size: tuple[int, int], seed: int) -> Iterator[Sample]:
        """Natural images under real distortions; every fourth sample flat or nearly flat (where float32 SSIM breaks)."""
        rng = np.random.default_rng(seed)
        h, w = size
        for i, s in enumerate(natural_pairs(n, size, seed)):
            if i % 4 != 3:
                yield s
                continue
            level = float(rng.uniform(0.05, 0.95))
            flat = np.full((h, w, 3), level, np.float32)
            grain = np.clip(flat + rng.normal(0.0, 0.004, flat.shape), 0.0, 1.0).astype(np.float32)
            yield Sample(f"flat@{level:.2f}/{h}x{w}", {"ref": flat, "dist": grain if i % 8 == 3 else flat * 0.98})

    def reference(self, weights: Weights | None) -> Reference:
        try:
            return _SkimageReference()
        except ImportError as exc:
            from registry.plugin import MissingDependency

            raise MissingDependency("the SSIM reference (scikit-image)", "export") from exc


FAMILY = Ssim()

__all__ = ["FAMILY"]
