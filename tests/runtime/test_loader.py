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


def test_threads_from_the_environment(monkeypatch: pytest.MonkeyPatch, reg_path: Path) -> None:
    """TINYREG_THREADS sets the sessions' intra-op threads; an explicit count wins; a bad value is refused."""
    from registry.errors import UsageError
    from registry.runtime.loader import default_session_options, env_threads

    monkeypatch.delenv("TINYREG_THREADS", raising=False)
    assert env_threads() == 0 and default_session_options().intra_op_num_threads == 0
    monkeypatch.setenv("TINYREG_THREADS", " 3 ")
    assert default_session_options().intra_op_num_threads == 3
    assert default_session_options(2).intra_op_num_threads == 2
    monkeypatch.setenv("TINYREG_THREADS", "0" * 5000 + "7")  # leading zeros are not digits int() counts against 4300
    assert env_threads() == 7
    for bad in ("-1", "two", "1.5", "1025", "9" * 400, "9" * 5000, "0" * 5000 + "1025", "²", "١", "+2", "0x2", "1_0"):
        monkeypatch.setenv("TINYREG_THREADS", bad)
        for threads in (0, 2):  # checked even when the caller gives a count (a dataset run's share): never ignored
            with pytest.raises(UsageError, match="TINYREG_THREADS") as err:
                default_session_options(threads)
            assert len(str(err.value)) < 200
    monkeypatch.setenv("TINYREG_THREADS", "1")
    with pytest.warns(SmokeModelWarning):
        sess = registry.load("dists_vgg16", reg_path)
    x = np.zeros((1, 3, 16, 16), np.float32)
    assert abs(float(sess.run(None, {"ref": x, "dist": x})[0])) < 1e-6


def test_bad_threads_is_one_line_exit_2(reg_path: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from PIL import Image

    img = tmp_path / "a.png"
    Image.new("RGB", (16, 16)).save(img)
    env = {**os.environ, "TINYREG_THREADS": "lots"}
    p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", str(img), str(img), "--registry",
                        str(reg_path)], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "TINYREG_THREADS" in p.stderr, p.stderr
