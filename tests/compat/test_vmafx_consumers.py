"""The VMAFx fork's consumers (its CI gate, libvmaf's loader scans, its runtime allowlist) on what tinyreg writes.

Run on the migrated vendored VMAFx copy, on a signed registry tinyreg made, and on one of 64 entries.
The lookup guard is key-order independent: it compares what the text scans find with what a JSON
parser reads, for every entry, so a field added anywhere later that breaks a scan fails here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from registry.export.smoke import smoke_bytes
from registry.families import get_family
from registry.onnx.allowlist import VMAFX_PROFILE, check_model, errors_only, load_allowlist
from registry.onnx.inspect import inspect_bytes
from registry.store.layout import sidecar_rel
from tests.compat.vmafx import (
    FORK_RUNTIME_OPS,
    REGISTRY_CAP,
    find_bundle,
    gate,
    loader_problems,
    read_capped,
    refused_ops,
    sidecar_fields,
)
from tests.conftest import VMAFX

SHIPPED = Path(__file__).resolve().parents[2] / "model" / "tiny"
@pytest.fixture(params=["migrated_vmafx", "signed_native", "big_registry"])
def any_registry(request: pytest.FixtureRequest) -> Path:
    path: Path = request.getfixturevalue(request.param)
    return path


# ------------------------------------------------------------------ the gate

def test_model_of_the_gate_matches_the_issue_on_the_vendored_copy(tmp_path: Path) -> None:
    """Before migrate the gate reports only the two model files the copy lacks; after a migrate with the
    fork's schema file kept as it was, the 21 errors the issue reported (the model is faithful)."""
    from registry.migrate import migrate_registry

    rc, errors = gate(VMAFX / "registry.json")
    assert rc == 1 and len(errors) == 2 and all("missing ONNX file" in e for e in errors), errors
    assert {e.split(":")[0] for e in errors} == {"fastdvdnet_pre", "transnet_v2"}
    dst = tmp_path / "tiny"
    shutil.copytree(VMAFX, dst)
    migrate_registry(dst / "registry.json", skip_missing=True)
    rc, errors = gate(dst / "registry.json", VMAFX / "registry.schema.json")
    assert rc == 1 and len(errors) == 21, errors


@pytest.mark.slow
def test_gate_passes_after_migrate(any_registry: Path) -> None:
    assert gate(any_registry) == (0, [])


def test_signed_native_folder_verifies_under_the_consumer_policy(signed_native: Path, signing_key: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    """The gate's schema file is one more file of the folder: the snapshot covers it, verify --trust passes."""
    from registry.signing.policy import write_policy
    from registry.verify import verify_registry

    policy = tmp_path / "trust.json"
    write_policy(policy, keys=[signing_key[1]])
    r = verify_registry(signed_native, trust=policy)
    assert r.ok and not r.errors, [f.message for f in r.findings]


def test_native_folder_has_no_gate_file_until_migrate(reg_path: Path) -> None:
    """``tinyreg init`` writes no fork file; ``migrate`` on a version 2 folder adds it (and is then a no-op)."""
    from registry.migrate import migrate_registry

    assert gate(reg_path)[0] == 2
    m = migrate_registry(reg_path)
    assert m.written and m.schema_file == "written"
    assert gate(reg_path) == (0, [])
    again = migrate_registry(reg_path)
    assert again.noop and again.schema_file == "unchanged"


@pytest.mark.parametrize(("change", "needle"), [
    (lambda d: d["models"][0].update(x_new_field=1), "Additional properties"),
    (lambda d: d.update(x_top=1), "Additional properties"),
    (lambda d: d.update(schema_version=3), "is not one of"),
    (lambda d: d["models"][0].update(id="Has_Upper"), "does not match"),
    (lambda d: d["models"][0].update(notes="n" * 513), "is too long"),
    (lambda d: d["models"][0].update(onnx="../up.onnx"), "does not match"),
    (lambda d: d["models"][0].update(files="not a list"), "is not of type"),
    (lambda d: d["models"][0]["io"].update(inputs="x"), "is not of type"),
])
def test_extended_schema_still_rejects(migrated_vmafx: Path, tmp_path: Path, change: Any, needle: str) -> None:
    """What the fork's schema refuses stays refused; tinyreg's own fields are checked with tinyreg's definitions."""
    dst = tmp_path / "tiny"
    shutil.copytree(migrated_vmafx.parent, dst)
    doc = json.loads((dst / "registry.json").read_text())
    change(doc)
    (dst / "registry.json").write_text(json.dumps(doc))
    rc, errors = gate(dst / "registry.json")
    assert rc == 1 and any(needle in e for e in errors), errors


# ------------------------------------------------------------------ libvmaf's text scans

def test_every_entry_resolves_to_its_own_bundle_and_sidecar(any_registry: Path) -> None:
    doc = json.loads(any_registry.read_text())
    assert doc["models"]
    if "migration" not in doc:  # native: signed, every entry has a bundle
        assert all(isinstance(m.get("sigstore_bundle"), str) for m in doc["models"])
    assert loader_problems(any_registry) == []


def test_shipped_registry_lookups() -> None:
    """model/tiny (unsigned: every lookup finds no bundle, and none finds another entry's)."""
    assert loader_problems(SHIPPED / "registry.json") == []


def test_native_sidecars_carry_the_fork_fields(signed_native: Path) -> None:
    doc = json.loads(signed_native.read_text())
    for m in doc["models"]:
        f = sidecar_fields((signed_native.parent / sidecar_rel(m["onnx"])).read_bytes())
        assert f == {"name": m["id"], "kind": m["kind"], "input_name": m["io"]["inputs"][0]["name"],
                     "output_name": m["io"]["outputs"][0]["name"], "onnx_opset": m["opset"],
                     "quant_mode": m.get("quant_mode", "fp32")}


def test_lookups_are_what_they_were_before_migrate(migrated_vmafx: Path) -> None:
    """For every v1 row (kept or left out) the fork resolves the same bundle and sidecar values as before."""
    before, after = read_capped(VMAFX / "registry.json"), read_capped(migrated_vmafx)
    fixed = json.loads(after)["migration"]["opset_corrected"]
    for row in json.loads(before)["models"]:
        name = Path(row["onnx"]).name
        assert find_bundle(after, name) == find_bundle(before, name) == row["sigstore_bundle"]
        side = VMAFX / sidecar_rel(row["onnx"])
        if side.is_file() and row["id"] not in fixed:
            assert sidecar_fields((migrated_vmafx.parent / side.name).read_bytes()) == sidecar_fields(side.read_bytes())


def test_64_entries_stay_under_the_loader_cap(big_registry: Path) -> None:
    size = big_registry.stat().st_size
    assert len(json.loads(big_registry.read_text())["models"]) == 64
    assert size < REGISTRY_CAP // 2, size  # room to grow: 64 full rows with 500-character notes


def test_guard_can_fail_on_sorted_output(signed_native: Path, tmp_path: Path) -> None:
    """The guard is not vacuous: the same document written with plain sorted keys (tinyreg before) breaks every lookup."""
    dst = tmp_path / "tiny"
    shutil.copytree(signed_native.parent, dst)
    doc = json.loads((dst / "registry.json").read_text())
    (dst / "registry.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
    problems = loader_problems(dst / "registry.json")
    assert len([p for p in problems if "bundle lookup" in p]) == len(doc["models"]), problems


# ------------------------------------------------------------------ the runtime op allowlist

def test_vmafx_profile_is_the_fork_runtime_list() -> None:
    ops = load_allowlist().ops(VMAFX_PROFILE)
    assert set(ops) == {"ai.onnx"} and ops["ai.onnx"] == FORK_RUNTIME_OPS


@pytest.mark.parametrize("opset", [17, 18, 21])
@pytest.mark.parametrize("family", ["dists", "lpips", "ssim"])
def test_every_family_graph_loads_in_the_fork(family: str, opset: int) -> None:
    data = smoke_bytes(get_family(family), opset)
    assert refused_ops(data) == []
    assert errors_only(check_model(inspect_bytes(data, family), load_allowlist(), VMAFX_PROFILE)) == []


def test_shipped_graphs_against_the_fork_runtime() -> None:
    """fp32 graphs and static (QDQ) int8 siblings load; a dynamic sibling is refused, and tinyreg's profile says the same."""
    doc = json.loads((SHIPPED / "registry.json").read_text())
    allow = load_allowlist()
    for m in doc["models"]:
        graphs = [m["onnx"]] + ([m["onnx"][:-5] + ".int8.onnx"] if m.get("int8_sha256") else [])
        for rel in graphs:
            data = (SHIPPED / rel).read_bytes()
            refused = refused_ops(data)
            flagged = errors_only(check_model(inspect_bytes(data, rel), allow, VMAFX_PROFILE))
            assert bool(refused) == bool(flagged), (rel, refused, flagged)
            if rel.endswith(".int8.onnx") and m.get("quant_mode") == "dynamic":
                assert {"ConvInteger", "DynamicQuantizeLinear"} <= set(refused)
            else:
                assert refused == [], (rel, refused)


def _if_with(op: str) -> bytes:
    from onnx import TensorProto, helper

    body = lambda name: helper.make_graph(  # noqa: E731
        [helper.make_node(op, ["x"], [f"{name}_y"], **({"axis": 0, "num_outputs": 1} if op == "Split" else {}))],
        name, [], [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)])
    node = helper.make_node("If", ["c"], ["y"], then_branch=body("then"), else_branch=body("else"))
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                                        helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8).SerializeToString()


def test_refused_op_hidden_in_a_control_flow_body() -> None:
    allow = load_allowlist()
    assert refused_ops(_if_with("Relu")) == []
    assert errors_only(check_model(inspect_bytes(_if_with("Relu"), "m"), allow, VMAFX_PROFILE)) == []
    assert refused_ops(_if_with("Split")) == ["Split", "Split"]
    flagged = errors_only(check_model(inspect_bytes(_if_with("Split"), "m"), allow, VMAFX_PROFILE))
    assert [v.code.rsplit(":", 1)[-1] for v in flagged] == ["Split", "Split"]


def test_check_ops_profile_vmafx(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from registry.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["check-ops", "dists_vgg16", "--profile", "vmafx", "--registry", str(SHIPPED)])
    assert ok.exit_code == 0, ok.output
    assert "dists_vgg16.onnx: ok" in ok.output and "dists_vgg16.int8.onnx: ok" in ok.output
    bad = runner.invoke(app, ["check-ops", "lpips_vgg16", "--profile", "vmafx", "--registry", str(SHIPPED)])
    assert bad.exit_code == 1 and "ConvInteger" in bad.output, bad.output
    (tmp_path / "m.onnx").write_bytes(_if_with("Split"))
    f = runner.invoke(app, ["check-ops", str(tmp_path / "m.onnx"), "--profile", "vmafx"])
    assert f.exit_code == 1 and "Split" in f.output, f.output
