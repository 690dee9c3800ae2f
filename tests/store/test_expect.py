"""Every write computed from an entry lands only onto the row it was computed from (``expect``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from registry.errors import ConflictError
from registry.quant import inputs as qi
from registry.store.document import expect_row, read_registry, transaction
from registry.store.entries import update_entry, write_entry
from tests.factories import snapshot

IO = {"inputs": [{"name": "x", "dtype": "float32", "shape": [1, 4]}],
      "outputs": [{"name": "y", "dtype": "float32", "shape": [1, 4]}]}


def matmul(seed: int) -> bytes:
    w = numpy_helper.from_array(np.random.default_rng(seed).standard_normal((4, 4)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m.SerializeToString()


def familyless(reg_path: Path) -> dict[str, Any]:
    fields = dict(read_registry(reg_path).get("dists_vgg16"))
    fields.update({"id": "m", "onnx": "m.onnx", "files": None, "sha256": "0" * 64, "io": IO, "family": None,
                   "quant_accuracy_budget_plcc": 0.05, "smoke": False, "opset": 17, "placeholder_for": None,
                   "provenance": {"tools": {}, "adopted": {"from_schema_version": 1, "tool": "test"}}})
    return write_entry(reg_path, fields, {"m.onnx": matmul(1)})


def test_expect_row_refuses_any_change_to_the_row_read(reg_path: Path) -> None:
    row = read_registry(reg_path).get("dists_vgg16")
    update_entry(reg_path, "dists_vgg16", {"notes": "someone else"})  # not the model: still a different row
    with pytest.raises(ConflictError, match="changed while this command ran"), transaction(reg_path, expect=expect_row(row)):
        pass
    row = read_registry(reg_path).get("dists_vgg16")
    with transaction(reg_path, expect=expect_row(row)) as reg:  # unchanged: lands
        reg.get("dists_vgg16")["notes"] = "mine"
    assert read_registry(reg_path).get("dists_vgg16")["notes"] == "mine"


def test_quantize_on_inputs_does_not_land_an_int8_of_an_old_fp32(reg_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack: while `quantize --inputs` computes (tens of seconds, no lock), the fp32 model is replaced; the int8
    made from the old fp32 used to land beside the new one with its gate recorded as passed, and verify said OK."""
    familyless(reg_path)
    arrays = {"x": np.ones((8, 1, 4), np.float32)}
    monkeypatch.setattr(qi, "input_set", lambda reg, entry, inputs: qi.InputSet(arrays, b"set", "s.npz", True))

    class Passed:
        passed = True

        def as_json(self) -> dict[str, Any]:
            return {"passed": True}

    def judge_while_the_model_changes(*a: object, **k: object) -> Passed:
        row = dict(read_registry(reg_path).get("m"))
        write_entry(reg_path, {**row, "files": None, "sha256": "0" * 64}, {"m.onnx": matmul(2)})  # another writer lands
        return Passed()

    monkeypatch.setattr(qi, "judge", judge_while_the_model_changes)
    with pytest.raises(ConflictError):
        qi.quantize_on_inputs(reg_path, "m", inputs=Path("s.npz"))
    after = snapshot(reg_path.parent)
    assert "m.int8.onnx" not in after and "int8_sha256" not in read_registry(reg_path).get("m")


class _Gated:
    def __init__(self, entry: str, run: int) -> None:
        self.entry, self.passed, self.run = entry, True, run

    def as_json(self) -> dict[str, Any]:
        return {"passed": True, "drop": 0.0, "run": self.run}


def test_gate_record_lands_only_onto_the_models_it_gated(reg_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.quant import run as qrun

    calls: list[str] = []

    def gate_one(path: Path, eid: str, seed: int, inputs: Path | None, precision: str = "int8") -> _Gated:
        if calls and calls[-1] == "change-model":  # another writer replaces the fp32 model while the gate runs
            row = dict(read_registry(path).get(eid))
            write_entry(path, {**row, "files": None, "sha256": "0" * 64}, {"m.onnx": matmul(3)})
        if inputs is not None:  # the gate pins the input set it was given, in its own update
            update_entry(path, eid, {"notes": "input set pinned"})
        return _Gated(eid, len(calls))

    familyless(reg_path)
    monkeypatch.setattr(qrun, "_gate_one", gate_one)
    qrun.gate(reg_path, "m", record=True, inputs=Path("set.npz"))  # its own pin does not block its record
    assert read_registry(reg_path).get("m")["quant"]["gate"]["passed"] is True
    calls.append("change-model")
    with pytest.raises(ConflictError):
        qrun.gate(reg_path, "m", record=True)
    row = read_registry(reg_path).get("m")
    assert row["quant"]["gate"]["run"] == 0  # the gate that ran on the old model is not recorded onto the new one
