from __future__ import annotations

import hashlib

import numpy as np
import onnxruntime as ort
import pytest

from registry.export.smoke import smoke_bytes
from registry.families import family_names, get_family
from registry.onnx.inspect import inspect_bytes

# The placeholders are byte-reproducible: a change here is a change of the artifact.
# (Re-pinned when the graphs stopped using Split, which the VMAFx runtime allowlist refuses:
# size-1 Slices instead, bit-identical outputs; see tests/compat.)
PINNED = {
    "dists": "0ef254ace1f923300ba4f556e7ed74a654eaa463cc69404666fc15d06b90839a",
    "lpips": "769a157c187fac48390226bb39437a8f8714ae5067277d7a8c74a3f09e880994",
    "ssim": "7dd5800dcded74db4a281ddbd8bd4e35d8ce2f681d8e39ef0258a55bfe89423d",  # the metric itself, unstamped
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
