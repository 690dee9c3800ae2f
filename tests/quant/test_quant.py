from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import CheckFailed, InputError
from registry.onnx.inspect import inspect_bytes
from registry.quant.gate import bootstrap_drop_ci, compare, run_gate, spearman
from registry.quant.quantize import quantize_bytes, quantize_entry, strip_unused_imports
from registry.runtime.loader import verified_model_bytes
from registry.store.document import read_registry, transaction
from registry.verify import verify_registry

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "model" / "tiny"


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "tiny"
    shutil.copytree(SHIPPED, dst, ignore=shutil.ignore_patterns(".*"))
    return dst / "registry.json"


def test_shipped_entries_are_quantised_and_verify() -> None:
    from registry.families import get_family
    from registry.plugin import Quantise

    reg = read_registry(SHIPPED / "registry.json")
    for e in reg.entries:
        if not isinstance(get_family(e["family"]).quant, Quantise):
            assert "int8_sha256" not in e and e["quant"]["policy"] == "not quantised"
            continue
        assert e["quant_mode"] in ("static", "dynamic")
        assert e["quant"]["gate"]["passed"] is True
        info = inspect_bytes(verified_model_bytes(reg, e, int8=True), "int8")
        assert set(info.opset_imports) == info.used_domains() | {"ai.onnx"}  # unused imports stripped
    assert verify_registry(SHIPPED / "registry.json").ok


@pytest.mark.slow  # static calibration of the real graph (~30 s)
def test_quantize_static_records_everything(reg_path: Path) -> None:
    e = quantize_entry(reg_path, "dists_vgg16")
    assert e["quant_mode"] == "static"
    assert e["quant_calibration_set"] == "dists_vgg16.int8.calib.npy"
    roles = {f["role"] for f in e["files"]}
    assert {"onnx", "int8", "sidecar", "calibration"} <= roles
    q = e["quant"]
    assert q["gate"]["drop_ci95"][1] <= e["quant_accuracy_budget_plcc"]
    assert q["calibration"]["pairs"] == 16 and q["settings"]["op_types"] == ["Conv"]
    assert "stay fp32" in q["settings"]["kept_fp32"]
    side = json.loads((reg_path.parent / "dists_vgg16.json").read_text())
    assert side["int8_sha256"] == e["int8_sha256"] and side["quant_mode"] == "static"
    assert "mode: static" in (reg_path.parent / "dists_vgg16.md").read_text()
    assert verify_registry(reg_path).ok
    # byte-reproducible
    first = (reg_path.parent / "dists_vgg16.int8.onnx").read_bytes()
    again = quantize_entry(reg_path, "dists_vgg16", mode="static")
    assert again["int8_sha256"] == e["int8_sha256"]
    assert (reg_path.parent / "dists_vgg16.int8.onnx").read_bytes() == first
    # the int8 graph quantises the backbone only: L2 pooling convs and the statistics stay fp32
    info = inspect_bytes(first, "int8")
    assert ("ai.onnx", "QuantizeLinear") in info.op_set() and ("ai.onnx", "Sqrt") in info.op_set()


@pytest.mark.slow  # a full quantisation that fails the gate (~20 s)
def test_over_budget_writes_nothing(reg_path: Path) -> None:
    with transaction(reg_path) as reg:
        reg.get("dists_vgg16")["quant_accuracy_budget_plcc"] = 1e-7
    before = reg_path.read_bytes()
    with pytest.raises(CheckFailed, match="nothing written") as err:
        quantize_entry(reg_path, "dists_vgg16")
    assert "static" in str(err.value) and "dynamic" in str(err.value)  # static first, then the fallback
    assert reg_path.read_bytes() == before
    assert not (reg_path.parent / "dists_vgg16.int8.onnx").exists()


@pytest.mark.slow  # static then dynamic quantisation (~20 s)
def test_falls_back_to_dynamic(reg_path: Path) -> None:
    from registry.export.smoke import add_smoke

    add_smoke(reg_path, "lpips")
    e = quantize_entry(reg_path, "lpips_vgg16")
    tried = e["quant"]["tried"]
    assert [t["mode"] for t in tried] == ["static", "dynamic"]
    assert tried[0]["passed"] is False and tried[1]["passed"] is True
    assert e["quant_mode"] == "dynamic" and "quant_calibration_set" not in e
    assert verify_registry(reg_path).ok


@pytest.mark.slow
def test_verdict_identical_for_ten_seeds(shipped_copy: Path, tmp_path: Path) -> None:
    """A good int8 passes at every seed, a destroyed one fails at every seed."""
    from registry.families import get_family
    from registry.plugin import Quantise
    from registry.quant.gate import Gate
    from registry.quant.quantize import calibration_pairs

    reg = read_registry(shipped_copy)
    e = reg.get("dists_vgg16")
    # naive static quantisation of every op (what the family forbids)
    fam_all = Quantise(op_types=("Conv", "Mul", "Add", "Sub", "Div", "ReduceMean", "Sqrt"), node_prefixes=("",), rationale="",
                       budget_plcc=1.0)
    fam = get_family("dists")
    assert isinstance(fam.quant, Quantise)
    calib = calibration_pairs(fam, fam.quant, None, fam.quant.calibration_size)
    bad = quantize_bytes(verified_model_bytes(reg, e), "static", fam_all, calib, fam)
    good = verified_model_bytes(reg, e, int8=True)
    verdicts = []
    for seed in range(10):
        gate = Gate.prepare(reg, e, seed=seed)
        verdicts.append((gate.judge(good).passed, gate.judge(bad).passed))
    assert verdicts == [(True, False)] * 10
    assert run_gate(reg, e, seed=3).passed  # the one-call form agrees


def test_gate_statistics() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(200)
    assert compare(a, a.copy(), 0.005, rng)["drop_ci95"] == (0.0, 0.0)
    noisy = a + rng.normal(0, 0.05, a.shape)
    res = compare(a, noisy, 0.005, rng)
    lo, hi = res["drop_ci95"]
    assert lo <= res["drop"] <= hi and not res["passed"]
    assert spearman(a, a**3) == pytest.approx(1.0)
    with pytest.raises(InputError, match="not representative"):
        compare(np.full(50, 0.3), np.full(50, 0.3), 0.005, rng)
    lo2, hi2 = bootstrap_drop_ci(a, noisy, np.random.default_rng(1), 500)
    assert 0 <= lo2 <= hi2 <= 1


def test_gate_refuses_entries_without_family(vmafx_copy: Path) -> None:
    from registry.errors import UsageError

    reg = read_registry(vmafx_copy)
    with pytest.raises(UsageError, match="no representative inputs"):
        run_gate(reg, reg.get("vmaf_tiny_v3"))


def test_weight_free_family_without_normalisation_in_the_gate(tmp_path: Path) -> None:
    """A family with normalisation 'none' (SSIM) is fed by its own feeds(): no KeyError 'mean' in the gate."""
    from registry.errors import UsageError
    from registry.export.smoke import add_smoke
    from registry.quant.gate import Gate
    from registry.store.document import init_registry

    reg_path = init_registry(tmp_path / "r")
    e = add_smoke(reg_path, "ssim")
    assert e["input_conventions"]["normalisation"] == "none" and "mean" not in e["input_conventions"]
    reg = read_registry(reg_path)
    gate = Gate.prepare(reg, reg.get("ssim_luma"), pairs=8, sizes=[(32, 32)], budget=0.005)
    assert gate.judge(verified_model_bytes(reg, reg.get("ssim_luma"))).passed
    with pytest.raises(UsageError, match="not quantised"):
        quantize_entry(reg_path, "ssim_luma")


def test_strip_unused_imports() -> None:
    from onnx import helper

    from tests import onnx_factory as f

    m = f.tiny(extra_imports=[helper.make_opsetid("com.microsoft", 1), helper.make_opsetid("ai.onnx.ml", 3)])
    assert strip_unused_imports(m) == ["ai.onnx.ml", "com.microsoft"]
    assert [o.domain for o in m.opset_import] == [""]


def test_int8_tamper_detected(shipped_copy: Path) -> None:
    p = shipped_copy.parent / "dists_vgg16.int8.onnx"
    p.write_bytes(p.read_bytes() + b"\0")
    errs = verify_registry(shipped_copy).errors
    assert any(x.entry == "dists_vgg16" and "int8 model" in x.message for x in errs)


@pytest.mark.slow
def test_measure_quant_drop_script(shipped_copy: Path) -> None:
    script = REPO / "ai" / "scripts" / "measure_quant_drop.py"
    run = lambda *a: subprocess.run([sys.executable, str(script), *a], capture_output=True, text=True)  # noqa: E731
    ok = run("--all", "--registry", str(shipped_copy))
    assert ok.returncode == 0 and ok.stdout.count("PASS") == 2, ok.stderr
    with transaction(shipped_copy) as reg:
        reg.get("dists_vgg16")["quant_accuracy_budget_plcc"] = 1e-6
    over = run(str(shipped_copy.parent / "dists_vgg16.onnx"))  # the model path names the entry and its registry
    assert over.returncode == 1 and over.stdout.startswith("FAIL dists_vgg16") and "PASS" not in over.stdout
    assert run("--registry", str(shipped_copy)).returncode == 2
    assert run(str(shipped_copy.parent / "nope.onnx")).returncode == 2


def test_gate_all_reports_entries_it_cannot_gate(vmafx_copy: Path) -> None:
    from registry.quant.run import gate

    run = gate(vmafx_copy, None)
    assert run.results == [] and run.exit_code == 2
    assert {e for e, _ in run.refused} == {"learned_filter_v1", "nr_metric_v1", "vmaf_tiny_v3", "vmaf_tiny_v4"}


@given(st.lists(st.one_of(st.integers(-3, 3).map(float), st.floats(allow_nan=True, allow_infinity=True, width=32)),
                max_size=60))
@settings(deadline=None)  # the first example imports scipy
def test_ranks_average_ties_like_scipy(values: list[float]) -> None:
    """The one-sort ranks equal scipy's average ranks (from 0), NaNs tied last as np.unique groups them."""
    from scipy.stats import rankdata

    from registry.quant.gate import ranks

    x = np.array(values, np.float64)
    got = ranks(x)
    finite = ~np.isnan(x)
    want = np.empty(len(x))
    want[finite] = rankdata(x[finite], method="average") - 1
    k = int(finite.sum())
    want[~finite] = k + (len(x) - k - 1) / 2.0
    assert np.array_equal(got, want)
