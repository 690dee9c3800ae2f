"""Every installed family honours the contract of registry.plugin: the same checks, parametrised over families."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from typer.testing import CliRunner

from registry.cli import app
from registry.errors import CheckFailed
from registry.export.core import WeightSource, check_graph, export_entry
from registry.export.parity import parity_reference, run_parity
from registry.export.smoke import add_smoke, smoke_bytes, smoke_model
from registry.families import get_family
from registry.onnx.allowlist import check_model, errors_only, load_allowlist
from registry.onnx.inspect import inspect_bytes
from registry.plugin import Family, NotQuantised, Quantise
from registry.quant.gate import Gate
from registry.runtime.loader import load, verified_model_bytes
from registry.scoring.score import score_images
from registry.store.document import init_registry, read_registry
from registry.verify import verify_registry
from tests.families.conftest import PARITY_RUN

REPO = Path(__file__).resolve().parents[2]
Exported = tuple[Path, str, list[WeightSource]]


def test_family_declares_everything(family_name: str) -> None:
    fam = get_family(family_name)
    assert isinstance(fam, Family) and fam.meta.name == family_name
    assert fam.meta.default_id and fam.meta.title and fam.meta.license and fam.meta.score_meaning
    assert [t.name for t in fam.contract.outputs] == ["score"]
    assert isinstance(fam.quant, (Quantise, NotQuantised))
    text = fam.quant.rationale if isinstance(fam.quant, Quantise) else fam.quant.reason
    assert len(text) > 40  # the policy says why
    assert len({w.key for w in fam.weights}) == len(fam.weights)
    for w in fam.weights:
        assert len(w.sha256) == 64 and w.url.startswith("https://")


@pytest.mark.slow
def test_smoke_reproducible(family_name: str) -> None:
    fam = get_family(family_name)
    first = smoke_bytes(fam)
    assert smoke_bytes(fam) == first and len(first) < 200_000
    code = (
        "import hashlib,sys; from registry.families import get_family; from registry.export.smoke import smoke_bytes;"
        f"sys.stdout.write(hashlib.sha256(smoke_bytes(get_family('{family_name}'))).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout == hashlib.sha256(first).hexdigest()


def test_contract_holds_for_graph_and_feeds(family_name: str) -> None:
    fam = get_family(family_name)
    info = inspect_bytes(smoke_bytes(fam), family_name)
    assert info.io_json() == fam.contract.io_json() and info.op_set() == set(fam.ops) and info.opset == 17
    sess = ort.InferenceSession(smoke_bytes(fam))
    for sample in fam.samples(3, (fam.contract.min_size + 6, fam.contract.min_size + 11), 0):
        feeds = fam.feeds(sample)
        assert list(feeds) == list(fam.contract.input_names)
        for spec in fam.contract.inputs:
            arr = feeds[spec.name]
            assert arr.dtype == np.float32 and arr.ndim == len(spec.shape)
            assert all(d == s for d, s in zip(arr.shape, spec.shape, strict=True) if isinstance(s, int))
        assert np.isfinite(np.asarray(sess.run(None, feeds)[0])).all()


def test_core_refuses_a_graph_that_breaks_the_contract(family_name: str) -> None:
    fam = get_family(family_name)
    model = smoke_model(fam)
    model.graph.input[0].name = "renamed"
    with pytest.raises(CheckFailed, match="contract"):
        check_graph(fam, model, 17)
    model = smoke_model(fam)
    with pytest.raises(CheckFailed, match="asked for 18"):
        check_graph(fam, model, 18)


@pytest.mark.slow
def test_export_checks(exported: Exported, family_name: str) -> None:
    reg, eid, _ = exported
    fam = get_family(family_name)
    e = read_registry(reg).get(eid)
    assert e["smoke"] is False and e["family"] == family_name and e["opset"] == 17
    assert e["io"] == fam.contract.io_json() and e["input_conventions"]["score"] == fam.meta.score_meaning
    assert [u["key"] for u in e["provenance"].get("upstream", [])] == [w.key for w in fam.weights]
    info = inspect_bytes(verified_model_bytes(read_registry(reg), e), eid)
    assert errors_only(check_model(info, load_allowlist(), "fp32")) == []
    report = verify_registry(reg)
    assert report.ok, [str(f) for f in report.findings]
    card = (reg.parent / f"{eid}.md").read_text()
    assert fam.meta.score_meaning in card and "SMOKE" not in card


@pytest.mark.slow
def test_export_is_byte_reproducible(exported: Exported, family_name: str, tmp_path: Path) -> None:
    reg, eid, weights = exported
    again = export_entry(init_registry(tmp_path / "again"), family_name, weights=weights)
    assert again["sha256"] == read_registry(reg).get(eid)["sha256"]


@pytest.mark.slow
def test_parity_within_declared_bound(exported: Exported, family_name: str) -> None:
    reg, eid, weights = exported
    fam = get_family(family_name)
    assert fam.parity is not None, "every shipped family has a reference"
    entry = read_registry(reg).get(eid)
    reference = parity_reference(entry, fam, weights)
    pairs, sizes = PARITY_RUN.get(family_name, (fam.parity.pairs, list(fam.parity.sizes)))
    res = run_parity(load(eid, reg), entry, fam, reference, pairs=pairs, sizes=sizes)
    assert res.passed, res
    assert res.max_abs_diff <= fam.parity.tolerance and res.identical_max_abs <= fam.parity.identical_tolerance
    assert res.tolerance == fam.parity.tolerance


def _negated(model_bytes: bytes) -> bytes:
    """The same graph with its score negated: a candidate that must fail the gate."""
    import onnx
    from onnx import helper

    m = onnx.load_from_string(model_bytes)
    out = m.graph.output[0].name
    for node in m.graph.node:
        node.output[:] = [f"{o}_pre" if o == out else o for o in node.output]
    m.graph.node.append(helper.make_node("Neg", [f"{out}_pre"], [out], name="negate"))
    data: bytes = m.SerializeToString()
    return data


def test_gate_verdict_stable(family_name: str, tmp_path: Path) -> None:
    """The gate runs on every family's representative samples and conventions; its verdict does not depend on the seed."""
    reg = init_registry(tmp_path / "smoke")
    eid = str(add_smoke(reg, family_name)["id"])
    doc = read_registry(reg)
    entry = doc.get(eid)
    fp32 = verified_model_bytes(doc, entry)
    bad = _negated(fp32)
    for seed in (0, 1):
        gate = Gate.prepare(doc, entry, seed=seed, pairs=8, sizes=[(32, 32), (27, 41)], budget=0.01)
        same = gate.judge(fp32, "fp32")
        assert same.passed and same.drop <= 1e-12, same
        assert not gate.judge(bad, "negated").passed


def _png(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(np.clip(np.rint(arr * 255), 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.slow
def test_score_via_cli_and_api(exported: Exported, family_name: str, tmp_path: Path) -> None:
    reg, eid, _ = exported
    fam = get_family(family_name)
    sample = next(iter(fam.samples(1, (40, 56), 5)))
    ref = _png(tmp_path / "ref.png", sample.images["ref"])
    dist = _png(tmp_path / "dist.png", sample.images["dist"])
    api = score_images(eid, ref, dist, registry=reg)
    same = score_images(eid, ref, ref, registry=reg)
    assert abs(same.scores[0] - fam.meta.identical_score) <= 1e-6
    assert api.scores[0] != same.scores[0]
    result = CliRunner().invoke(app, ["score", eid, str(ref), str(dist), "--registry", str(reg), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "score" and doc["ok"] is True
    assert doc["score"] == api.scores[0] and doc["family"] == family_name and doc["direction"] == fam.meta.direction.value
