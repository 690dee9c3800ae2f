"""Read an ONNX graph from bytes and describe what it contains.

Everything here works on bytes that the caller already read (and hashed); no
file is opened by path, and onnxruntime is not imported.
"""

from __future__ import annotations

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

    if t.raw_data:
        return len(t.raw_data)
    n = 1
    for d in t.dims:
        n *= int(d)
    try:
        item = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        item = 4
    return n * item


def _walk_graph(graph: Any, where: str, info: ModelInfo) -> None:
    import onnx

    for t in graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            kv = {e.key: e.value for e in t.external_data}
            try:
                offset = int(kv.get("offset", "0") or 0)
                length = int(kv["length"]) if kv.get("length") else None
            except ValueError:
                offset, length = -1, None
            info.external.append(ExternalRef(t.name, kv.get("location", ""), offset, length))
            if length is not None:
                info.initializer_bytes += length
        else:
            info.initializer_bytes += _tensor_nbytes(t)
    for node in graph.node:
        info.nodes.append(NodeRef(canon_domain(node.domain), node.op_type, node.name or "(unnamed)", where))
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _walk_graph(attr.g, f"{where}/{node.name or node.op_type}.{attr.name}", info)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for i, g in enumerate(attr.graphs):
                    _walk_graph(g, f"{where}/{node.name or node.op_type}.{attr.name}[{i}]", info)
            elif attr.type == onnx.AttributeProto.TENSOR:
                info.initializer_bytes += _tensor_nbytes(attr.t)


def inspect_model(model: onnx.ModelProto) -> ModelInfo:
    info = ModelInfo(
        ir_version=int(model.ir_version),
        opset_imports={canon_domain(o.domain): int(o.version) for o in model.opset_import},
    )
    init_names = {t.name for t in model.graph.initializer}
    info.inputs = [_tensor_spec(vi) for vi in model.graph.input if vi.name not in init_names]
    info.outputs = [_tensor_spec(vi) for vi in model.graph.output]
    _walk_graph(model.graph, "graph", info)
    for fn in model.functions:
        dom = canon_domain(fn.domain)
        info.functions.append((dom, fn.name))
        for node in fn.node:
            info.nodes.append(
                NodeRef(canon_domain(node.domain), node.op_type, node.name or "(unnamed)", f"function {dom}:{fn.name}")
            )
    return info


def inspect_bytes(data: bytes, source: str) -> ModelInfo:
    return inspect_model(parse_model(data, source))
