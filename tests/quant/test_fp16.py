"""The fp16 sibling: conversion under the family's precision policy, the one gate fed by either sample source,
the written, pinned and signed sibling, and the attacks on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from registry.errors import CheckFailed, IntegrityError, UsageError
from registry.families import get_family
from registry.plugin import Fp16, NotFp16
from registry.quant.fp16 import convert, convert_bytes, fp16_entry
from registry.quant.gate import FamilySamples, Gate, GateResult, PinnedInputs, compare, compare_outputs, family_source
from registry.runtime.loader import load, verified_model_bytes
from registry.store.document import read_registry
from tests.conftest import REPO
from tests.precision_factory import edit_entry

TINY = REPO / "model" / "tiny"


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    t = {vi.name: vi.type.tensor_type.elem_type for vi in [*g.input, *g.value_info, *g.output]}
    t.update({i.name: i.data_type for i in g.initializer})
    return t


def _float_types(model: onnx.ModelProto, node: onnx.NodeProto) -> set[int]:
    t = _types(model)
    return {t[n] for n in [*node.input, *node.output] if n and t.get(n) in (TensorProto.FLOAT, TensorProto.FLOAT16)}


@pytest.mark.parametrize("family", ["dists", "lpips"])
def test_policy_is_honoured(family: str) -> None:
    """Exactly the nodes the family names run in fp16; every other node stays fp32; I/O stays float32."""
    fam = get_family(family)
    pol = fam.fp16
    assert isinstance(pol, Fp16)
    src = onnx.load(str(TINY / f"{family}_vgg16.onnx"))
    conv = convert(src, pol)
    m = conv.model
    assert [i.type.tensor_type.elem_type for i in m.graph.input] == [TensorProto.FLOAT] * 2
    assert [o.type.tensor_type.elem_type for o in m.graph.output] == [TensorProto.FLOAT]
    by_name = {n.name: n for n in m.graph.node}
    wanted = [n.name for n in src.graph.node if n.op_type in pol.op_types and n.name.startswith(pol.node_prefixes)]
    assert sorted(conv.fp16_nodes) == sorted(wanted) and wanted
    for name in conv.fp16_nodes:
        assert _float_types(m, by_name[name]) == {TensorProto.FLOAT16}, name
    for n in src.graph.node:
        if n.name not in conv.fp16_nodes:
            assert _float_types(m, by_name[n.name]) <= {TensorProto.FLOAT}, n.name
    if family == "dists":  # what the policy names: L2 pooling, statistics, head stay fp32
        kept = {n.name for n in src.graph.node if n.name.startswith(("l2pool", "similarity", "distance", "dist1_acc"))}
        assert kept and kept.isdisjoint(conv.fp16_nodes)
        assert {n.op_type for n in src.graph.node if n.name not in conv.fp16_nodes} >= {"ReduceMean", "Div", "Sqrt"}
    # one Cast per tensor and direction, only at the fp16/fp32 borders (not one per edge)
    casts = [n for n in m.graph.node if n.op_type == "Cast"]
    assert len(casts) == conv.casts and len({(c.input[0], c.attribute[0].i) for c in casts}) == len(casts)
    assert conv.casts < len(conv.fp16_nodes)


def test_conversion_refusals() -> None:
    src = onnx.load(str(TINY / "dists_vgg16.onnx"))
    with pytest.raises(UsageError, match="selects no node"):
        convert(src, Fp16(op_types=("Gemm",), node_prefixes=("",), rationale="x"))
    # a weight fp16 cannot hold
    x = helper.make_tensor_value_info("ref", TensorProto.FLOAT, [1, 3, 4, 4])
    d = helper.make_tensor_value_info("dist", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("score", TensorProto.FLOAT, [])
    big = numpy_helper.from_array(np.full((1, 3, 1, 1), 1e6, np.float32), "big")
    shape = numpy_helper.from_array(np.zeros((0,), np.int64), "shape")
    nodes = [helper.make_node("Mul", ["ref", "big"], ["m"], name="mul"), helper.make_node("Sub", ["m", "dist"], ["s"], name="sub"),
             helper.make_node("ReduceMean", ["s"], ["r"], name="mean", keepdims=0),
             helper.make_node("Reshape", ["r", "shape"], ["score"], name="out")]
    g = helper.make_graph(nodes, "t", [x, d], [y], [big, shape])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UsageError, match="beyond fp16's range"):
        convert(model, Fp16(op_types=("Mul",), node_prefixes=("mul",), rationale="x"))


def _overflow_model() -> tuple[bytes, bytes]:
    """Two 1x1 convolutions (weights 300) on ``ref``: activations ~3e5 are fine in fp32 and overflow fp16 (> 65504)."""
    x = helper.make_tensor_value_info("ref", TensorProto.FLOAT, [1, 3, "H", "W"])
    d = helper.make_tensor_value_info("dist", TensorProto.FLOAT, [1, 3, "H", "W"])
    y = helper.make_tensor_value_info("score", TensorProto.FLOAT, [])
    w = numpy_helper.from_array(np.full((3, 3, 1, 1), 300.0, np.float32), "w")
    shape = numpy_helper.from_array(np.zeros((0,), np.int64), "shape")
    nodes = [helper.make_node("Conv", ["ref", "w"], ["c1"], name="conv1"), helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w"], ["c2"], name="conv2"),
             helper.make_node("ReduceMean", ["c2"], ["a"], name="mean_c", keepdims=0),
             helper.make_node("ReduceMean", ["dist"], ["b"], name="mean_d", keepdims=0),
             helper.make_node("Sub", ["a", "b"], ["r"], name="diff"), helper.make_node("Reshape", ["r", "shape"], ["score"], name="out")]
    model = helper.make_model(helper.make_graph(nodes, "overflow", [x, d], [y], [w, shape]),
                              opset_imports=[helper.make_opsetid("", 17)])
    pol = Fp16(op_types=("Conv", "Relu"), node_prefixes=("conv", "relu"), rationale="a backbone that overflows")
    half, _ = convert_bytes(model.SerializeToString(), pol)
    return model.SerializeToString(), half


def test_fp16_overflow_fails_the_gate_not_passes_it() -> None:
    """NaN/inf from an fp16 overflow: the gate records a failure (non-finite count, statistics null), never a pass."""
    fp32, half = _overflow_model()
    entry = read_registry(TINY / "registry.json").get("dists_vgg16")
    fam = get_family("dists")
    feeds = [fam.feeds(s) for s in fam.samples(12, (16, 16), 3)]
    arrays = {k: np.concatenate([f[k] for f in feeds]) for k in ("ref", "dist")}
    from registry.store.document import Registry

    gate = Gate.prepare(Registry(Path("."), {}), entry, fp32_bytes=fp32, source=PinnedInputs(arrays, "x.npz", "0" * 64),
                        precision="fp16")
    res = gate.judge(half)
    assert not res.passed and res.nonfinite is not None and res.nonfinite >= 6
    rec = res.as_json()
    assert rec["passed"] is False and rec["plcc"] is None and rec["max_abs_diff"] is None
    json.dumps(rec, allow_nan=False)  # a strict JSON record
    # onnxruntime's CPU may run this fp16 file in fp32 (no fp16 Conv kernel on x86 without AVX512-FP16) and see
    # no overflow at all: which is why the gate judges the emulated device arithmetic, and records the CPU run beside it
    assert set(rec["cpu_run"]) == {"max_abs_diff", "drop_ci95", "nonfinite", "passed"}
    # the statistics functions themselves
    a = np.linspace(0, 1, 20)
    b = a.copy()
    b[3] = np.inf
    assert compare(a, b, 1.0, np.random.default_rng(0))["passed"] is False
    assert compare_outputs([np.full((2, 2), x) for x in a], [np.full((2, 2), x) for x in b], 1.0, 0)[1]["passed"] is False
    with pytest.raises(Exception, match="non-finite"):  # a NaN in the fp32 reference is unusable input, not a verdict
        compare(b, a, 1.0, np.random.default_rng(0))


def test_max_abs_error_is_a_second_condition() -> None:
    a = np.linspace(0, 1, 40)
    b = a + 0.002  # perfectly correlated, but off by 2e-3 everywhere
    rng = np.random.default_rng(0)
    assert compare(a, b, 1e-4, rng)["passed"] is True  # PLCC alone would pass it
    assert compare(a, b, 1e-4, np.random.default_rng(0), max_abs=1e-3)["passed"] is False


def test_both_sample_sources_feed_the_same_gate() -> None:
    """Family samples and a pinned input set holding the very same feeds give the same verdict and statistics."""
    reg = read_registry(TINY / "registry.json")
    entry = reg.get("dists_vgg16")
    fp32 = verified_model_bytes(reg, entry)
    half, _ = convert_bytes(fp32, get_family("dists").fp16)  # type: ignore[arg-type]
    fam_src = FamilySamples(12, ((32, 32),))
    feeds = fam_src.feeds(entry, 5)
    arrays = {k: np.concatenate([f[k] for f in feeds]) for k in ("ref", "dist")}
    pinned = PinnedInputs(arrays, "dists_vgg16.gate-inputs.npz", "ab" * 32)
    results = []
    for src in (fam_src, pinned):
        gate = Gate.prepare(reg, entry, seed=5, fp32_bytes=fp32, source=src, precision="fp16")
        results.append(gate.judge(half))
    a, b = results
    assert a.passed and b.passed and a.samples == b.samples == 12
    assert (a.plcc, a.drop_ci95, a.max_abs_diff) == (b.plcc, b.drop_ci95, b.max_abs_diff)
    assert a.inputs is None and b.inputs == "dists_vgg16.gate-inputs.npz" and b.over == "samples"
    # the int8 sibling goes through the same gate with either source
    i8 = verified_model_bytes(reg, entry, precision="int8")
    r8 = Gate.prepare(reg, entry, seed=5, fp32_bytes=fp32, source=pinned).judge(i8)
    assert r8.precision is None and r8.max_abs_budget is None and r8.inputs == pinned.rel


def test_int8_family_gate_record_is_unchanged() -> None:
    """The family int8 gate's JSON keeps its fields (no fp16-only or input-set fields appear)."""
    r = GateResult(entry="e", mode="static", samples=8, sizes=["8x8"], seed=0, budget=0.005, plcc=1.0, srocc=1.0, drop=0.0,
                   drop_ci95=(0.0, 0.0), mean_abs_diff=0.0, max_abs_diff=0.0, passed=True)
    assert list(r.as_json()) == ["entry", "mode", "samples", "sizes", "seed", "budget", "plcc", "srocc", "drop", "drop_ci95",
                                 "mean_abs_diff", "max_abs_diff", "passed"]


def test_fp16_sibling_written_pinned_signed(fp16_reg: Path) -> None:
    from registry.signing.statement import used_files
    from registry.store.layout import expected_files
    from registry.verify import verify_registry

    reg = read_registry(fp16_reg)
    e = reg.get("dists_vgg16")
    pin = next(f for f in e["files"] if f["path"] == "dists_vgg16.fp16.onnx")
    assert pin["role"] == "fp16" and pin["sha256"] == e["fp16_sha256"]
    g = e["fp16"]["gate"]
    assert g["passed"] and g["precision"] == "fp16" and g["max_abs_diff"] <= g["max_abs_budget"] == 1e-3
    assert g["candidate_sha256"] == e["fp16_sha256"] and g["model_sha256"] == e["sha256"]
    assert e["fp16"]["settings"]["kept_fp32"].startswith("Only the 13 VGG-16")
    assert "dists_vgg16.fp16.onnx" in expected_files(reg)
    assert used_files(reg, e)["dists_vgg16.fp16.onnx"] == ("fp16", e["fp16_sha256"])
    rep = verify_registry(fp16_reg)
    assert rep.ok, rep.errors
    with pytest.warns(UserWarning, match="SMOKE"):
        sess = load("dists_vgg16", fp16_reg, precision="fp16")
    assert [i.type for i in sess.get_inputs()] == ["tensor(float)"] * 2 and sess.get_outputs()[0].type == "tensor(float)"


def test_verify_reports_a_forged_fp16_record(fp16_reg: Path) -> None:
    from registry.verify import verify_registry

    edit_entry(fp16_reg, "dists_vgg16", lambda e: e["fp16"]["gate"].update(passed=False))
    rep = verify_registry(fp16_reg)
    assert any(f.check == "fp16" and "did not pass" in f.message for f in rep.errors), rep.errors


def test_fp16_refused_for_ssim_and_family_without_policy(tmp_path: Path) -> None:
    reg = tmp_path / "tiny"
    shutil.copytree(TINY, reg)
    assert isinstance(get_family("ssim").fp16, NotFp16)
    with pytest.raises(UsageError, match="has no fp16 sibling: SSIM is refused in fp16"):
        fp16_entry(reg / "registry.json", "ssim_luma")
    assert not (reg / "ssim_luma.fp16.onnx").exists()


def test_failing_candidate_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A candidate over budget is not written (an entry whose budget no fp16 graph can meet)."""
    reg = tmp_path / "tiny"
    shutil.copytree(TINY, reg)
    edit_entry(reg / "registry.json", "dists_vgg16", lambda e: e.update(fp16_accuracy_budget_plcc=0.0))
    before = (reg / "registry.json").read_bytes()
    with pytest.raises(CheckFailed, match="fails its gate"):
        fp16_entry(reg / "registry.json", "dists_vgg16", pairs=8, sizes=[(32, 32)])
    assert (reg / "registry.json").read_bytes() == before and not (reg / "dists_vgg16.fp16.onnx").exists()


def _verdicts(entry_id: str, seeds: range, source: FamilySamples | None = None) -> list[bool]:
    reg = read_registry(TINY / "registry.json")
    entry = reg.get(entry_id)
    fp32 = verified_model_bytes(reg, entry)
    half, _ = convert_bytes(fp32, get_family(str(entry["family"])).fp16)  # type: ignore[arg-type]
    src = source or family_source(entry, precision="fp16")
    return [Gate.prepare(reg, entry, seed=s, fp32_bytes=fp32, source=src, precision="fp16").judge(half).passed for s in seeds]


def test_fp16_verdict_is_seed_stable_fast() -> None:
    assert _verdicts("lpips_vgg16", range(2), FamilySamples(24, ((64, 64), (72, 120)))) == [True, True]


@pytest.mark.slow
def test_fp16_verdict_is_seed_stable_10_seeds() -> None:
    """The shipped LPIPS's fp16 sibling passes at every seed (its max error over 192 pairs: 2.5e-4..7.1e-4)."""
    assert _verdicts("lpips_vgg16", range(10)) == [True] * 10


@pytest.mark.slow
def test_fp16_verdict_smoke_dists_is_borderline() -> None:
    """The smoke DISTS (random weights, 4-16 channels per stage) has an fp16 max error at the 1e-3 limit
    (3.6e-4..1.1e-3 over 192 pairs depending on the seed; over seeds 0-9, seeds 1 and 6 fail): its verdict is
    not seed-stable, documented in docs/precision.md. Two seeds show it; a change in either direction fails here."""
    assert _verdicts("dists_vgg16", range(2)) == [True, False]


# ---------------------------------------------------------------- the attacker


def test_planted_unpinned_fp16_file(tmp_path: Path, fp16_master: Path) -> None:
    """An fp16 file dropped into the folder without a pin: not loaded, not scored, reported as unlisted."""
    from registry.verify import verify_registry

    reg = tmp_path / "tiny"
    shutil.copytree(TINY, reg)
    shutil.copy(fp16_master.parent / "dists_vgg16.fp16.onnx", reg / "dists_vgg16.fp16.onnx")
    with pytest.raises(UsageError, match="has no fp16 sibling"):
        load("dists_vgg16", reg / "registry.json", precision="fp16")
    rep = verify_registry(reg / "registry.json")
    assert any("dists_vgg16.fp16.onnx" in f.message for f in rep.errors), rep.errors
    # claiming it in the row without pinning it in files[] is refused too
    edit_entry(reg / "registry.json", "dists_vgg16", lambda e: e.update(
        fp16_sha256=read_registry(fp16_master).get("dists_vgg16")["fp16_sha256"],
        fp16=read_registry(fp16_master).get("dists_vgg16")["fp16"]))
    with pytest.raises(IntegrityError, match="not pinned in files"):
        load("dists_vgg16", reg / "registry.json", precision="fp16")


def test_gate_record_edited_to_passed(fp16_reg: Path) -> None:
    def flip(e: dict) -> None:  # type: ignore[type-arg]
        e["fp16"]["gate"]["passed"] = False

    edit_entry(fp16_reg, "dists_vgg16", flip)
    with pytest.raises(UsageError, match="did not pass its gate"):
        load("dists_vgg16", fp16_reg, precision="fp16")

    def forge(e: dict) -> None:  # type: ignore[type-arg]
        e["fp16"]["gate"].update(passed=True, max_abs_diff=0.01)  # a failing error, the verdict edited to passed

    edit_entry(fp16_reg, "dists_vgg16", forge)
    with pytest.raises(UsageError, match=r"max \|score error\|"):
        load("dists_vgg16", fp16_reg, precision="fp16")

    def forge_ci(e: dict) -> None:  # type: ignore[type-arg]
        e["fp16"]["gate"].update(max_abs_diff=0.0, drop_ci95=[0.0, 0.5])

    edit_entry(fp16_reg, "dists_vgg16", forge_ci)
    with pytest.raises(UsageError, match="not within"):
        load("dists_vgg16", fp16_reg, precision="fp16")


def test_fp16_sibling_of_another_entry(fp16_reg: Path, tmp_path: Path) -> None:
    """LPIPS's gated fp16 graph put in place of DISTS's (file, pin and digest all swapped): its record does not match."""
    lp = copy = tmp_path / "lp"
    shutil.copytree(fp16_reg.parent, copy)
    fp16_entry(lp / "registry.json", "lpips_vgg16", pairs=8, sizes=[(32, 32)])
    other = read_registry(lp / "registry.json").get("lpips_vgg16")
    shutil.copy(lp / "lpips_vgg16.fp16.onnx", fp16_reg.parent / "dists_vgg16.fp16.onnx")

    def swap(e: dict, record: bool) -> None:  # type: ignore[type-arg]
        e["fp16_sha256"] = other["fp16_sha256"]
        for f in e["files"]:
            if f["path"] == "dists_vgg16.fp16.onnx":
                f.update(sha256=other["fp16_sha256"], size=(lp / "lpips_vgg16.fp16.onnx").stat().st_size)
        if record:
            e["fp16"] = other["fp16"]

    edit_entry(fp16_reg, "dists_vgg16", lambda e: swap(e, False))
    with pytest.raises(UsageError, match="other files than the entry pins"):
        load("dists_vgg16", fp16_reg, precision="fp16")
    edit_entry(fp16_reg, "dists_vgg16", lambda e: swap(e, True))  # the other entry's record too: judged on another fp32
    with pytest.raises(UsageError, match="other files than the entry pins"):
        load("dists_vgg16", fp16_reg, precision="fp16")


def test_fp16_bytes_swapped_under_the_pin(fp16_reg: Path) -> None:
    path = fp16_reg.parent / "dists_vgg16.fp16.onnx"
    data = bytearray(path.read_bytes())
    data[-10] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        load("dists_vgg16", fp16_reg, precision="fp16")


@pytest.mark.filterwarnings("ignore:.*SMOKE")
def test_fp16_sibling_is_signed_with_the_entry(fp16_reg: Path, tmp_path: Path) -> None:
    """The entry's signature names the fp16 file; an attacker who swaps it, repins and rewrites the gate record
    to match is stopped by the signature."""
    import base64

    from registry.errors import SignatureError
    from registry.signing.sign import set_policy, sign_entries
    from registry.store.repin import pin
    from registry.verify import verify_registry
    from tests.factories import keypair

    priv, pub = keypair(tmp_path, "k")
    set_policy(fp16_reg, public_key=pub)
    sign_entries(fp16_reg, "dists_vgg16", key=priv)
    e = read_registry(fp16_reg).get("dists_vgg16")
    doc = json.loads((fp16_reg.parent / e["sigstore_bundle"]).read_text())
    stmt = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    assert {"name": "dists_vgg16.fp16.onnx", "digest": {"sha256": e["fp16_sha256"]}} in stmt["subject"]
    load("dists_vgg16", fp16_reg, precision="fp16", verify_signature=True)
    # the attacker: other weights in the fp16 file, pins recomputed, the gate record made to match
    path = fp16_reg.parent / "dists_vgg16.fp16.onnx"
    m = onnx.load_from_string(path.read_bytes())
    init = next(i for i in m.graph.initializer if i.data_type == TensorProto.FLOAT16)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float16(1.01), init.name))
    path.write_bytes(m.SerializeToString())
    pin(fp16_reg, "dists_vgg16")
    new = read_registry(fp16_reg).get("dists_vgg16")["fp16_sha256"]
    edit_entry(fp16_reg, "dists_vgg16", lambda row: row["fp16"]["gate"].update(candidate_sha256=new))
    assert any(f.check == "signature" for f in verify_registry(fp16_reg).errors)
    with pytest.raises(SignatureError):
        load("dists_vgg16", fp16_reg, precision="fp16", verify_signature=True)


def test_fp16_on_a_pinned_input_set(tmp_path: Path) -> None:
    """`quantize --mode fp16 --inputs set.npz`: the same gate on the given set, which is then pinned and named in the record."""
    from registry.verify import verify_registry

    reg = tmp_path / "tiny"
    shutil.copytree(TINY, reg)
    fam = get_family("dists")
    feeds = [fam.feeds(s) for s in fam.samples(10, (32, 32), 9)]
    npz = tmp_path / "set.npz"
    np.savez(npz, **{k: np.concatenate([f[k] for f in feeds]) for k in ("ref", "dist")})
    e = fp16_entry(reg / "registry.json", "dists_vgg16", inputs=npz)
    g = e["fp16"]["gate"]
    assert g["passed"] and g["inputs"] == e["quant_gate_inputs"] == "dists_vgg16.gate-inputs.npz" and g["samples"] == 10
    assert any(f["role"] == "gate_inputs" and f["sha256"] == g["inputs_sha256"] for f in e["files"])
    assert verify_registry(reg / "registry.json").ok
