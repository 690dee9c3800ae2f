"""Read an ONNX graph from bytes and describe what it contains.

Everything here works on bytes that the caller already read (and hashed); no
file is opened by path, and onnxruntime is not imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from registry.errors import InputError

if TYPE_CHECKING:
    import onnx

STD_DOMAIN = "ai.onnx"


def canon_domain(domain: str) -> str:
    return STD_DOMAIN if domain in ("", STD_DOMAIN) else domain


@dataclass(frozen=True)
class NodeRef:
    domain: str
    op_type: str
    name: str
    where: str  # "graph", "graph/<node>.then_branch", "function <domain>:<name>"


@dataclass(frozen=True)
class ExternalRef:
    tensor: str
    location: str
    offset: int
    length: int | None
    where: str = "graph"
    nbytes: int = 0  # what the tensor's dims and type say it holds


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int | str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass
class ModelInfo:
    ir_version: int
    opset_imports: dict[str, int]
    nodes: list[NodeRef] = field(default_factory=list)
    functions: list[tuple[str, str]] = field(default_factory=list)
    external: list[ExternalRef] = field(default_factory=list)
    initializer_bytes: int = 0
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)

    @property
    def opset(self) -> int | None:
        return self.opset_imports.get(STD_DOMAIN)

    def op_set(self) -> set[tuple[str, str]]:
        return {(n.domain, n.op_type) for n in self.nodes}

    def used_domains(self) -> set[str]:
        return {n.domain for n in self.nodes}

    def io_json(self) -> dict[str, Any]:
        return {
            "inputs": [t.as_json() for t in self.inputs],
            "outputs": [t.as_json() for t in self.outputs],
        }


def parse_model(data: bytes, source: str) -> onnx.ModelProto:
    """Parse ONNX bytes; a non-ONNX or truncated file is an InputError."""
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InputError(f"{source}: not an ONNX model (truncated or corrupt protobuf)") from exc
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
        raise InputError(f"{source}: not an ONNX model (no ir_version, graph or opset_import)")
    return model


def _dtype_name(elem_type: int) -> str:
    import onnx

    try:
        name = str(onnx.TensorProto.DataType.Name(elem_type)).lower()
    except ValueError:
        return f"type{elem_type}"
    return {"float": "float32", "double": "float64"}.get(name, name)


def _tensor_spec(vi: Any) -> TensorSpec:
    tt = vi.type.tensor_type
    dims: list[int | str] = []
    if tt.HasField("shape"):
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.dim_param:
                dims.append(d.dim_param)
            else:
                dims.append("?")
    return TensorSpec(vi.name, _dtype_name(tt.elem_type), tuple(dims))


def _tensor_nbytes(t: Any) -> int:
    import numpy as np
    import onnx

    n = 1
    for d in t.dims:
        n *= max(int(d), 0)
    try:
        item = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        item = 4
    return max(len(t.raw_data), n * item, sum(len(x) for x in t.string_data))


def _node_where(where: str, node: Any, attr: Any) -> str:
    return f"{where}/{node.name or node.op_type}.{attr.name}"


def _attr_tensors(attr: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every tensor an attribute holds, whatever its declared type says (ORT may read any field)."""
    if attr.HasField("t"):
        yield where, attr.t
    for i, t in enumerate(attr.tensors):
        yield f"{where}[{i}]", t
    sparse = ([(where, attr.sparse_tensor)] if attr.HasField("sparse_tensor") else []) + [
        (f"{where}[{i}]", sp) for i, sp in enumerate(attr.sparse_tensors)
    ]
    for w, sp in sparse:
        yield f"{w}.values", sp.values
        yield f"{w}.indices", sp.indices


def _attr_graphs(attr: Any, where: str) -> Iterator[tuple[str, Any]]:
    if attr.HasField("g"):
        yield where, attr.g
    for i, g in enumerate(attr.graphs):
        yield f"{where}[{i}]", g


def _walk_nodes(nodes: Any, where: str) -> Iterator[tuple[str, str, Any]]:
    for node in nodes:
        yield "node", where, node
        for attr in node.attribute:
            aw = _node_where(where, node, attr)
            for tw, t in _attr_tensors(attr, aw):
                yield "tensor", tw, t
            for gw, g in _attr_graphs(attr, aw):
                yield from _walk_graph(g, gw)


def _walk_graph(graph: Any, where: str) -> Iterator[tuple[str, str, Any]]:
    for t in graph.initializer:
        yield "tensor", f"{where} initializer {t.name}", t
    for sp in graph.sparse_initializer:
        name = sp.values.name or sp.indices.name
        yield "tensor", f"{where} sparse_initializer {name}.values", sp.values
        yield "tensor", f"{where} sparse_initializer {name}.indices", sp.indices
    yield from _walk_nodes(graph.node, where)


def walk(model: onnx.ModelProto) -> Iterator[tuple[str, str, Any]]:
    """The one complete walk over a model: ("node", where, NodeProto) and ("tensor", where, TensorProto).

    Covers the main graph, every subgraph at any depth (If/Loop/Scan bodies and any
    graph-typed attribute), every model-local function (its nodes and its default
    attributes) and training-info graphs; tensors are initializers, the values and
    indices of sparse initializers, and every tensor held by an attribute (TENSOR,
    TENSORS, SPARSE_TENSOR, SPARSE_TENSORS). Pinning, the allowlist's external-data
    and size checks, and inlining in ``load`` are all driven by this walk.
    """
    yield from _walk_graph(model.graph, "graph")
    for fn in model.functions:
        fw = f"function {canon_domain(fn.domain)}:{fn.name}"
        for attr in fn.attribute_proto:
            aw = f"{fw}.{attr.name}"
            for tw, t in _attr_tensors(attr, aw):
                yield "tensor", tw, t
            for gw, g in _attr_graphs(attr, aw):
                yield from _walk_graph(g, gw)
        yield from _walk_nodes(fn.node, fw)
    for i, ti in enumerate(model.training_info):
        for name in ("initialization", "algorithm"):
            if ti.HasField(name):
                yield from _walk_graph(getattr(ti, name), f"training_info[{i}].{name}")


def iter_tensors(model: onnx.ModelProto) -> Iterator[tuple[str, Any]]:
    """(where, TensorProto) for every tensor of the model (see :func:`walk`)."""
    for kind, where, obj in walk(model):
        if kind == "tensor":
            yield where, obj


def is_external(t: Any) -> bool:
    """A tensor whose bytes live outside the model (or that names an outside file at all)."""
    import onnx

    return bool(t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data))


def external_ref(t: Any, where: str) -> ExternalRef:
    kv = {e.key: e.value for e in t.external_data}
    try:
        offset = int(kv.get("offset", "0") or 0)
        length = int(kv["length"]) if kv.get("length") else None
    except ValueError:
        offset, length = -1, None
    return ExternalRef(t.name, kv.get("location", ""), offset, length, where, _tensor_nbytes(t))


def external_tensors(model: onnx.ModelProto) -> list[tuple[str, Any]]:
    """(where, TensorProto) of every tensor whose bytes live in another file."""
    return [(w, t) for w, t in iter_tensors(model) if is_external(t)]


def inspect_model(model: onnx.ModelProto) -> ModelInfo:
    info = ModelInfo(
        ir_version=int(model.ir_version),
        opset_imports={canon_domain(o.domain): int(o.version) for o in model.opset_import},
    )
    init_names = {t.name for t in model.graph.initializer} | {sp.values.name for sp in model.graph.sparse_initializer}
    info.inputs = [_tensor_spec(vi) for vi in model.graph.input if vi.name not in init_names]
    info.outputs = [_tensor_spec(vi) for vi in model.graph.output]
    info.functions = [(canon_domain(fn.domain), fn.name) for fn in model.functions]
    for kind, where, obj in walk(model):
        if kind == "node":
            info.nodes.append(NodeRef(canon_domain(obj.domain), obj.op_type, obj.name or "(unnamed)", where))
        elif is_external(obj):
            ref = external_ref(obj, where)
            info.external.append(ref)
            info.initializer_bytes += ref.length if ref.length is not None else ref.nbytes
        else:
            info.initializer_bytes += _tensor_nbytes(obj)
    return info


def inspect_bytes(data: bytes, source: str) -> ModelInfo:
    return inspect_model(parse_model(data, source))
