from __future__ import annotations

import hashlib

import numpy as np
import onnxruntime as ort
import pytest

from registry.export.smoke import smoke_bytes
from registry.families import family_names, get_family
from registry.onnx.inspect import inspect_bytes

# The placeholders are byte-reproducible: a change here is a change of the artifact.
PINNED = {
    "dists": "fd2d1751b26e927cba67ed00b979b8e6c54d691f9a6f07f4188b9b2008e65169",
    "lpips": "a520512e5078bc9501caa5d2404e2730203a62d36bf7d03ddc6523d336dfab9b",
    "ssim": "212b90f4a4dcfb1611058645f40859fe4224f67f44c6568ae9dbbe5366dbbeff",  # the metric itself, unstamped
}


def test_families_discovered() -> None:
    assert {"dists", "lpips", "ssim"} <= set(family_names())


@pytest.mark.parametrize("name", sorted(PINNED))
def test_pinned_sha_and_size(name: str) -> None:
    data = smoke_bytes(get_family(name))
    assert hashlib.sha256(data).hexdigest() == PINNED[name]
    assert len(data) < 200_000


@pytest.mark.parametrize("opset", [17, 18, 21])
@pytest.mark.parametrize("name", sorted(PINNED))
def test_other_opsets_build_and_run(opset: int, name: str) -> None:
    fam = get_family(name)
    data = smoke_bytes(fam, opset)
    assert inspect_bytes(data, "x").opset == opset
    sess = ort.InferenceSession(data)
    # textured input: on flat images the reference's one-pass covariance
    # mean(xy) - mx*my cancels catastrophically in float32 (shared with DISTS_pytorch)
    x = np.random.default_rng(opset).standard_normal((1, fam.contract.inputs[0].shape[1], 16, 16)).astype(np.float32)  # type: ignore[arg-type]
    assert abs(float(sess.run(None, {"ref": x, "dist": x})[0]) - fam.meta.identical_score) < 1e-6
