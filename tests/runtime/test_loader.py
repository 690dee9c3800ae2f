from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import registry
from registry.errors import IntegrityError
from registry.runtime.loader import SmokeModelWarning
from registry.verify import verify_registry
from tests.factories import add_external_data_entry


def test_load_smoke_warns_and_runs(reg_path: Path) -> None:
    with pytest.warns(SmokeModelWarning):
        sess = registry.load("dists_vgg16", reg_path)
    x = np.random.default_rng(0).standard_normal((1, 3, 24, 24)).astype(np.float32)
    assert abs(float(sess.run(None, {"ref": x, "dist": x})[0])) < 1e-6


def test_load_refuses_tampered(reg_path: Path) -> None:
    p = reg_path.parent / "dists_vgg16.onnx"
    data = bytearray(p.read_bytes())
    data[100] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="refusing to load"):
        registry.load("dists_vgg16", reg_path)


def test_external_data_pinned_and_inlined(reg_path: Path) -> None:
    add_external_data_entry(reg_path)
    assert verify_registry(reg_path).ok
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmokeModelWarning)
        sess = registry.load("ext", reg_path)
    out = sess.run(None, {"x": np.zeros((1, 4), np.float32)})[0]
    assert np.array_equal(out, np.ones((1, 4), np.float32))
    # swapping the external data after pinning is refused, by load and by verify
    (reg_path.parent / "ext.onnx.data").write_bytes(np.full((1, 4), 9, np.float32).tobytes())
    with pytest.raises(IntegrityError, match=r"ext\.onnx\.data"):
        registry.load("ext", reg_path)
    assert any(x.entry == "ext" and x.check == "pins" for x in verify_registry(reg_path).errors)


def test_legacy_unpinned_external_data_refused(vmafx_copy: Path) -> None:
    with pytest.raises(IntegrityError, match="not pinned"):
        registry.load("vmaf_tiny_v1", vmafx_copy)
    sess = registry.load("vmaf_tiny_v3", vmafx_copy)  # self-contained and matching: loads
    assert sess.get_inputs()[0].name == "features"
