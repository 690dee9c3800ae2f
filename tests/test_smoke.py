from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

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
}
REPO = Path(__file__).resolve().parents[1]


def test_families_discovered() -> None:
    assert {"dists", "lpips"} <= set(family_names())


@pytest.mark.parametrize("name", sorted(PINNED))
def test_pinned_sha_and_size(name: str) -> None:
    data = smoke_bytes(get_family(name))
    assert hashlib.sha256(data).hexdigest() == PINNED[name]
    assert len(data) < 200_000


@pytest.mark.parametrize("name", sorted(PINNED))
def test_identical_in_another_process(name: str) -> None:
    code = (
        "import hashlib,sys; from registry.families import get_family; from registry.export.smoke import smoke_bytes;"
        f"sys.stdout.write(hashlib.sha256(smoke_bytes(get_family('{name}'))).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout == PINNED[name]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_abi_and_op_set(name: str) -> None:
    fam = get_family(name)
    data = smoke_bytes(fam)
    info = inspect_bytes(data, name)
    assert info.io_json() == fam.io
    assert info.op_set() == set(fam.ops)
    assert info.opset == 17


@pytest.mark.parametrize("name", sorted(PINNED))
@pytest.mark.parametrize("hw", [(32, 32), (37, 50), (64, 31)])
def test_runs_with_dynamic_hw(name: str, hw: tuple[int, int]) -> None:
    sess = ort.InferenceSession(smoke_bytes(get_family(name)))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, *hw)).astype(np.float32)
    y = x + rng.standard_normal(x.shape).astype(np.float32) * 0.5
    same = float(sess.run(None, {"ref": x, "dist": x})[0])
    diff = float(sess.run(None, {"ref": x, "dist": y})[0])
    assert sess.run(None, {"ref": x, "dist": x})[0].shape == ()
    assert abs(same) < 1e-6
    assert diff > same + 1e-4


@pytest.mark.parametrize("opset", [17, 18, 21])
def test_other_opsets_build_and_run(opset: int) -> None:
    fam = get_family("dists")
    data = smoke_bytes(fam, opset)
    assert inspect_bytes(data, "x").opset == opset
    sess = ort.InferenceSession(data)
    # textured input: on flat images the reference's one-pass covariance
    # mean(xy) - mx*my cancels catastrophically in float32 (shared with DISTS_pytorch)
    x = np.random.default_rng(opset).standard_normal((1, 3, 16, 16)).astype(np.float32)
    assert abs(float(sess.run(None, {"ref": x, "dist": x})[0])) < 1e-6
