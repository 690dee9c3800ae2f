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


# --- tensors that live outside the model, in every place a model can hold a tensor ---------------

EXT_VALUE = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)


def _externalise(t: onnx.TensorProto, location: str, offset: int = 0) -> None:
    t.ClearField("raw_data")
    t.ClearField("float_data")
    t.ClearField("int64_data")
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    item = 4 if t.data_type == TensorProto.FLOAT else 8
    for k, v in (("location", location), ("offset", str(offset)), ("length", str(int(np.prod(t.dims)) * item))):
        e = t.external_data.add()
        e.key, e.value = k, v


def external_model(kind: str, location: str) -> tuple[onnx.ModelProto, bytes]:
    """A model computing y = x + [1, 2, 3, 4] whose constant lives in ``location`` (returned bytes).

    ``kind``: initializer, sparse (sparse initializer with external values and indices),
    constant (Constant.value attribute), if (initializer of an If branch), loop (Constant
    inside a Loop body) or function (Constant inside a model-local function).
    """
    const = numpy_helper.from_array(EXT_VALUE, "c")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    data = EXT_VALUE.tobytes()
    inits: list[onnx.TensorProto] = []
    sparse: list[onnx.SparseTensorProto] = []
    functions: list[onnx.FunctionProto] = []
    imports = [helper.make_opsetid("", 17)]
    if kind == "initializer":
        _externalise(const, location)
        nodes, inits = [helper.make_node("Add", ["x", "c"], ["y"], name="add")], [const]
    elif kind == "sparse":
        values = numpy_helper.from_array(EXT_VALUE.reshape(4), "c_values")
        indices = numpy_helper.from_array(np.arange(4, dtype=np.int64), "c_indices")
        _externalise(values, location)
        _externalise(indices, location, offset=16)
        data = EXT_VALUE.tobytes() + np.arange(4, dtype=np.int64).tobytes()
        sparse = [helper.make_sparse_tensor(values, indices, [1, 4])]
        sparse[0].values.name = "c"
        nodes = [helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    elif kind == "constant":
        _externalise(const, location)
        nodes = [helper.make_node("Constant", [], ["c"], name="const", value=const),
                 helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    elif kind == "if":
        _externalise(const, location)
        out = helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])
        then_g = helper.make_graph([helper.make_node("Add", ["x", "c"], ["t"], name="inner")], "then", [], [out], [const])
        else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"], name="inner2")], "else", [], [out])
        nodes = [helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_g, else_branch=else_g)]
        inits = [numpy_helper.from_array(np.array(True), "cond")]
    elif kind == "loop":
        _externalise(const, location)
        body = helper.make_graph(
            [helper.make_node("Constant", [], ["c"], name="bconst", value=const),
             helper.make_node("Identity", ["cond_in"], ["cond_out"], name="bcond"),
             helper.make_node("Add", ["v_in", "c"], ["v_out"], name="badd")],
            "body",
            [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
             helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1, 4])],
            [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
             helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1, 4])],
        )
        nodes = [helper.make_node("Loop", ["trip", "cond"], ["y"], name="loop", body=body)]
        nodes[0].input.append("x")
        inits = [numpy_helper.from_array(np.array(1, np.int64), "trip"), numpy_helper.from_array(np.array(True), "cond")]
    elif kind == "function":
        _externalise(const, location)
        body = [helper.make_node("Constant", [], ["k"], name="fconst", value=const),
                helper.make_node("Add", ["a", "k"], ["b"], name="fadd")]
        functions = [helper.make_function("local.fn", "AddConst", ["a"], ["b"], body, [helper.make_opsetid("", 17)])]
        nodes = [helper.make_node("AddConst", ["x"], ["y"], name="call", domain="local.fn")]
        imports.append(helper.make_opsetid("local.fn", 1))
    else:
        raise ValueError(kind)
    g = helper.make_graph(nodes, "g", [x], [y], inits, sparse_initializer=sparse)
    m = helper.make_model(g, opset_imports=imports)
    m.ir_version = 8
    m.functions.extend(functions)
    return m, data


EXTERNAL_KINDS = ("initializer", "sparse", "constant", "if", "loop", "function")
