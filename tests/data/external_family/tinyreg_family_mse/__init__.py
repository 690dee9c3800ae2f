"""Mean squared error of two RGB images: a whole tinyreg family in one file, written only against registry.plugin."""

from __future__ import annotations

from typing import Any

import numpy as np

from registry.plugin import (
    RAW_RGB_CONVENTIONS,
    Direction,
    Family,
    GraphBuilder,
    Kind,
    Metadata,
    NotQuantised,
    Parity,
    Reference,
    Sample,
    Weights,
    full_reference_contract,
    onnx_ops,
)


class _NumpyMse:
    name = "numpy float64 mean((ref - dist)^2)"

    def score(self, sample: Sample) -> float:
        a = np.asarray(sample.images["ref"], np.float64)
        b = np.asarray(sample.images["dist"], np.float64)
        return float(np.mean((a - b) ** 2))


class Mse(Family):
    meta = Metadata(
        name="mse", default_id="mse_rgb", kind=Kind.FULL_REFERENCE, title="MSE (RGB)",
        description="Mean squared error over RGB in [0, 1].", citation="(textbook)", license="CC0-1.0",
        license_url="https://creativecommons.org/publicdomain/zero/1.0/", license_notes="A formula; no weights.",
        score_meaning="mean squared error; 0 for identical images, larger is worse", direction=Direction.LOWER_IS_BETTER,
        identical_score=0.0,
    )
    contract = full_reference_contract(3, RAW_RGB_CONVENTIONS, min_size=1)
    ops = onnx_ops("Mul", "ReduceMean", "Reshape", "Sub")
    parity = Parity(tolerance=1e-6, identical_tolerance=0.0, pairs=4, sizes=((17, 23),))
    quant = NotQuantised("three arithmetic ops on the input pixels; nothing to gain and the squared errors are small numbers")

    def build(self, weights: Weights | None, opset: int) -> Any:
        gb = GraphBuilder(opset)
        d = gb.op1("Sub", ["ref", "dist"], name="diff")
        m = gb.reduce("ReduceMean", gb.op1("Mul", [d, d], name="sq"), [1, 2, 3])
        shape = gb.const("scalar_shape", np.zeros((0,), np.int64), np.int64)
        gb.op("Reshape", [m, shape], 1, name="score_reshape")
        gb.nodes[-1].output[0] = "score"
        return gb.build([("ref", [1, 3, "H", "W"]), ("dist", [1, 3, "H", "W"])], [("score", [])], "mse", "MSE over RGB")

    def reference(self, weights: Weights | None) -> Reference:
        return _NumpyMse()


FAMILY = Mse()
