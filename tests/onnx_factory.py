"""Small generated ONNX models for tests (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tiny(opset: int = 17, ir: int = 8, nodes: list[onnx.NodeProto] | None = None, **kw: object) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    g = helper.make_graph(nodes or [helper.make_node("Relu", ["x"], ["y"], name="r")], "g", [x], [y])
    imports = [helper.make_opsetid("", opset), *kw.get("extra_imports", [])]  # type: ignore[misc]
    m = helper.make_model(g, opset_imports=imports)
    m.ir_version = ir
    return m


def custom_relu() -> onnx.ModelProto:
    n = helper.make_node("Relu", ["x"], ["y"], name="sneaky", domain="evil.ops")
    return tiny(nodes=[n], extra_imports=[helper.make_opsetid("evil.ops", 1)])


def with_function() -> onnx.ModelProto:
    body = [helper.make_node("Einsum", ["a"], ["b"], equation="ij->ij", name="hidden")]
    fn = helper.make_function("local.fn", "Wrap", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    n = helper.make_node("Wrap", ["x"], ["y"], name="call", domain="local.fn")
    m = tiny(nodes=[n], extra_imports=[helper.make_opsetid("local.fn", 1)])
    m.functions.append(fn)
    return m


def with_if() -> onnx.ModelProto:
    out = helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])
    then_g = helper.make_graph([helper.make_node("Einsum", ["x"], ["t"], equation="ij->ij", name="inner")], "then", [], [out])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"], name="inner2")], "else", [], [out])
    cond = numpy_helper.from_array(np.array(True), "cond")
    n = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_g, else_branch=else_g)
    m = tiny(nodes=[n])
    m.graph.initializer.append(cond)
    return m


def with_external(folder: Path, location: str, data_name: str = "w.onnx.data") -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((1, 4), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    (folder / data_name).write_bytes(np.ones((1, 4), np.float32).tobytes())
    m = tiny(nodes=[helper.make_node("Add", ["x", "w"], ["y"], name="add")])
    m.graph.initializer.append(w)
    return m
