"""Gating and quantising entries without a family on a pinned input set; the input-set builders."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry.errors import InputError, IntegrityError
from registry.media.inputsets import CANONICAL_6, build_frame_set, frames_from, read_feature_log
from registry.media.y4m import write_y4m
from registry.migrate import migrate_registry
from registry.quant.inputs import (
    NoGateInputs,
    cluster_bootstrap_drop_ci,
    compare_outputs,
    gate_on_inputs,
    input_set,
    run_samples,
)
from registry.quant.quantize import quantize_entry
from registry.quant.run import gate
from registry.runtime.loader import verified_model_bytes
from registry.store.document import read_registry
from registry.verify import verify_registry
from tests.conftest import REPO
from tests.vmaf_logs import write_logs

SCRIPTS = REPO / "ai" / "scripts"
INT8 = ("learned_filter_v1", "nr_metric_v1", "vmaf_tiny_v3", "vmaf_tiny_v4")


def script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Input sets built by the shipped scripts: natural images (scikit-image) and generated libvmaf logs."""
    d = tmp_path_factory.mktemp("sets")
    frames, features = script("build_frame_inputs"), script("build_feature_inputs")
    assert frames.main([str(d / "frame.npz"), "--natural", "--name", "frame"]) == 0
    # the filter's output is compared element by element: 32 frames are 1.6M elements (and half the run time)
    assert frames.main([str(d / "degraded.npz"), "--natural", "--name", "degraded", "--distorted", "1", "--seed", "1",
                        "-n", "32"]) == 0
    logs = write_logs(d / "logs")
    assert features.main([str(d / "features.npz"), *map(str, logs)]) == 0
    return {"nr_metric_v1": d / "frame.npz", "learned_filter_v1": d / "degraded.npz",
            "vmaf_tiny_v3": d / "features.npz", "vmaf_tiny_v4": d / "features.npz"}


@pytest.fixture
def migrated(vmafx_copy: Path) -> Path:
    migrate_registry(vmafx_copy, skip_missing=True)
    return vmafx_copy


@pytest.mark.slow
def test_four_vmafx_int8_entries_get_a_verdict_identical_over_ten_seeds(migrated: Path, sets: dict[str, Path]) -> None:
    for eid in INT8:
        p = cli("quant-gate", eid, "--inputs", str(sets[eid]), "--registry", str(migrated))
        assert p.returncode in (0, 1), (eid, p.returncode, p.stderr)
        assert "drop" in p.stdout and "95% CI" in p.stdout, p.stdout
        if eid == "learned_filter_v1":
            assert "on all output elements" in p.stdout and "image-like" in p.stdout
        else:
            assert "samples" in p.stdout and "elements" not in p.stdout
    # the sets are pinned now and later gates reuse them; the inputs are fixed, so a seed only changes the
    # bootstrap draws: run each model once and judge the same outputs under ten seeds
    reg = read_registry(migrated)
    for eid in INT8:
        e = reg.get(eid)
        s = input_set(reg, e, None)
        assert not s.new and s.source == e["quant_gate_inputs"]
        o32 = run_samples(verified_model_bytes(reg, e), s.arrays)
        o8 = run_samples(verified_model_bytes(reg, e, int8=True), s.arrays)
        verdicts = [compare_outputs(o32, o8, e["quant_accuracy_budget_plcc"], seed) for seed in range(10)]
        assert {over for over, _ in verdicts} == {"elements" if eid == "learned_filter_v1" else "samples"}
        assert len({st["passed"] for _, st in verdicts}) == 1, (eid, [st["drop_ci95"] for _, st in verdicts])
        assert len({st["drop"] for _, st in verdicts}) == 1
    r = verify_registry(migrated)
    assert r.ok, [f.message for f in r.errors]


@pytest.mark.slow
def test_input_set_is_copied_pinned_and_reused(migrated: Path, sets: dict[str, Path]) -> None:
    gate(migrated, "vmaf_tiny_v3", inputs=sets["vmaf_tiny_v3"])
    e = read_registry(migrated).get("vmaf_tiny_v3")
    assert e["quant_gate_inputs"] == "vmaf_tiny_v3.gate-inputs.npz"
    pin = next(f for f in e["files"] if f["path"] == e["quant_gate_inputs"])
    assert pin["role"] == "gate_inputs"
    copy = migrated.parent / e["quant_gate_inputs"]
    assert copy.read_bytes() == sets["vmaf_tiny_v3"].read_bytes()
    assert gate_on_inputs(migrated, "vmaf_tiny_v3").inputs == e["quant_gate_inputs"]
    # a changed pinned set is refused, never used
    arrays = dict(np.load(copy))
    arrays["features"] = arrays["features"] * 1.01
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    copy.write_bytes(buf.getvalue())
    with pytest.raises(IntegrityError):
        gate_on_inputs(migrated, "vmaf_tiny_v3")
    assert not verify_registry(migrated).ok


def test_without_an_input_set_the_refusal_names_the_option(migrated: Path) -> None:
    with pytest.raises(NoGateInputs) as exc:
        gate(migrated, "nr_metric_v1")
    assert "input set" in str(exc.value) and "--" not in str(exc.value)
    p = cli("quant-gate", "nr_metric_v1", "--registry", str(migrated))
    assert p.returncode == 2 and "--inputs" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = cli("quant-gate", "--all", "--registry", str(migrated))
    assert p.returncode == 2 and p.stderr.count("--inputs") == 4


def _npz(path: Path, **arrays: Any) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"feature": np.zeros((16, 6), np.float32)}, "inputs of 'vmaf_tiny_v3' are features"),
        ({"features": np.zeros((16, 6), np.float64)}, "float64, the model takes float32"),
        ({"features": np.zeros((16, 5), np.float32)}, "axis 1 must be 6"),
        ({"features": np.zeros((16, 1, 6), np.float32)}, "samples along the first axis"),
        ({"features": np.zeros((4, 6), np.float32)}, "at least 8"),
        ({"features": np.full((16, 6), np.nan, np.float32)}, "non-finite"),
        ({"features": np.array([{"a": 1}] * 16, dtype=object)}, "unpickling"),
    ],
)
def test_bad_input_sets_get_one_clear_line_and_change_nothing(migrated: Path, tmp_path: Path, arrays: dict[str, Any],
                                                               message: str) -> None:
    bad = _npz(tmp_path / "bad.npz", **arrays)
    before = migrated.read_bytes()
    with pytest.raises(InputError, match=message):
        gate(migrated, "vmaf_tiny_v3", inputs=bad)
    p = cli("quant-gate", "vmaf_tiny_v3", "--inputs", str(bad), "--registry", str(migrated))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert migrated.read_bytes() == before and not (migrated.parent / "vmaf_tiny_v3.gate-inputs.npz").exists()
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(InputError, match=r"not a readable \.npz"):
        gate(migrated, "vmaf_tiny_v3", inputs=tmp_path / "junk.npz")


def test_a_v1_registry_is_told_to_migrate_before_pinning(vmafx_copy: Path, sets: dict[str, Path]) -> None:
    from registry.errors import UsageError

    with pytest.raises(UsageError, match="schema_version 2"):
        gate(vmafx_copy, "vmaf_tiny_v3", inputs=sets["vmaf_tiny_v3"])


@pytest.mark.slow
def test_quantize_an_entry_without_a_family_on_its_input_set(migrated: Path, sets: dict[str, Path]) -> None:
    old = (migrated.parent / "vmaf_tiny_v4.int8.onnx").read_bytes()
    p = cli("quantize", "vmaf_tiny_v4", "--inputs", str(sets["vmaf_tiny_v4"]), "--registry", str(migrated))
    assert p.returncode == 0, p.stderr
    e = read_registry(migrated).get("vmaf_tiny_v4")
    assert e["quant_mode"] == "dynamic" and e["quant"]["gate"]["passed"] is True
    assert {f["role"] for f in e["files"]} >= {"onnx", "int8", "gate_inputs", "sidecar"}
    assert (migrated.parent / "vmaf_tiny_v4.int8.onnx").read_bytes() != old
    r = verify_registry(migrated)
    assert r.ok, [f.message for f in r.errors]
    assert gate(migrated, "vmaf_tiny_v4").exit_code == 0  # the pinned set is reused
    from registry.errors import UsageError

    with pytest.raises(UsageError, match="no quant_accuracy_budget_plcc"):
        quantize_entry(migrated, "vmaf_tiny_v2", inputs=sets["vmaf_tiny_v3"])
    with pytest.raises(NoGateInputs):
        quantize_entry(migrated, "fr_regressor_v3")
    with pytest.raises(UsageError, match="only dynamic"):
        quantize_entry(migrated, "vmaf_tiny_v3", mode="static")


def test_cluster_bootstrap() -> None:
    rng = np.random.default_rng(0)
    a = [rng.normal(size=(1, 1, 8, 8)) + k for k in range(12)]
    lo, hi = cluster_bootstrap_drop_ci(a, [x.copy() for x in a], np.random.default_rng(1), 500)
    assert abs(lo) < 1e-12 and abs(hi) < 1e-12
    noisy = [x + rng.normal(scale=0.5, size=x.shape) for x in a]
    lo, hi = cluster_bootstrap_drop_ci(a, noisy, np.random.default_rng(1), 500)
    flat_a, flat_b = np.concatenate([x.ravel() for x in a]), np.concatenate([x.ravel() for x in noisy])
    drop = 1 - np.corrcoef(flat_a, flat_b)[0, 1]
    assert 0 < lo <= drop <= hi < 1


def test_frame_builder_reads_images_and_y4m(tmp_path: Path) -> None:
    from PIL import Image

    from registry.media.images import natural_image, to_uint8

    img = natural_image("astronaut")
    Image.fromarray(to_uint8(img)).save(tmp_path / "a.png")
    write_y4m(tmp_path / "v.y4m", [img[:240, :320], img[100:340, 50:370]])
    src = list(frames_from([tmp_path]))
    assert [n for n, _ in src] == ["a.png", "v.y4m#0", "v.y4m#1"]
    frames, labels = build_frame_set(src, 9, size=64, seed=3)
    assert frames.shape == (9, 1, 64, 64) and frames.dtype == np.float32
    assert frames.min() >= 0.0 and frames.max() <= 1.0 and len(set(labels)) == 9
    again, _ = build_frame_set(src, 9, size=64, seed=3)
    assert np.array_equal(frames, again)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images"):
        list(frames_from([empty]))


def test_feature_builder_reads_json_and_csv_logs(tmp_path: Path) -> None:
    logs = write_logs(tmp_path, clips=2, frames=5)
    js, cs = read_feature_log(logs[0]), read_feature_log(logs[1])
    assert js.shape == cs.shape == (5, 6) and js.dtype == np.float32
    doc = json.loads(logs[0].read_text())
    m = doc["frames"][2]["metrics"]
    assert js[2].tolist() == pytest.approx([m[f"integer_{f}"] for f in CANONICAL_6])
    del doc["frames"][1]["metrics"]["integer_motion2"]
    logs[0].write_text(json.dumps(doc))
    with pytest.raises(InputError, match="frame 1 has no usable 'motion2'"):
        read_feature_log(logs[0])
    p = subprocess.run([sys.executable, str(SCRIPTS / "build_feature_inputs.py"), str(tmp_path / "o.npz"), str(logs[0])],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "motion2" in p.stderr and "Traceback" not in p.stderr


def test_a_forged_array_header_is_refused_before_anything_is_allocated() -> None:
    import zipfile

    from registry.quant.inputs import parse_npz

    buf = io.BytesIO()
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 6), }"
    header += b" " * (118 - len(header)) + b"\n"
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("features.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 24)
    with pytest.raises(InputError, match="declares more data than it holds"):
        parse_npz(buf.getvalue(), "forged.npz")
