"""fp16 conversion of the nodes a family's precision policy names; everything else stays fp32.

tinyreg converts graphs itself rather than with ``onnxconverter-common``: its converter
left a scalar float32 output as float16 (``keep_io_types`` breaks the entry's I/O contract)
and puts a Cast pair on every edge it crosses; here there is one Cast per tensor and
direction, and only where fp16 and fp32 nodes meet.

Rules:

* a node runs in fp16 when the policy selects it (op type and node-name prefix) and its op is
  not one whose float types are structural (``ALWAYS_FP32``: Cast, Constant, Resize's
  scales, shape producers, ...);
* its float32 inputs are fed as fp16: an initializer that only fp16 nodes read is stored in
  fp16; one that fp32 nodes read too gets an fp16 copy; any other tensor gets one Cast;
* its float32 outputs become fp16; an fp32 node (or a graph output) that reads one gets one
  Cast back to float32, so the graph's inputs and outputs keep their float32 types;
* integer tensors (shapes, axes, indices) are never touched; a graph with subgraphs or local
  functions is refused (nothing tinyreg builds has them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from registry.errors import MissingDependency, UsageError

if TYPE_CHECKING:
    from registry.plugin import Fp16
    from registry.store.document import Entry

# ops whose float types are part of their meaning (a target type, a shape, fixed float32 scales)
ALWAYS_FP32 = frozenset({
    "Cast", "CastLike", "Constant", "ConstantOfShape", "EyeLike", "Multinomial", "NonMaxSuppression", "RandomNormal",
    "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range", "Resize", "RoiAlign", "Shape", "Size", "TopK",
    "Upsample", "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Loop", "If", "Scan",
})
FLOAT = 1  # onnx.TensorProto.FLOAT
FLOAT16 = 10  # onnx.TensorProto.FLOAT16
FP16_MAX = 65504.0


@dataclass(frozen=True)
class Conversion:
    model: Any  # onnx.ModelProto
    fp16_nodes: list[str]
    fp32_nodes: list[str]
    casts: int


def selected(node: Any, pol: Fp16) -> bool:
    """Does the policy run this node in fp16?"""
    return bool(node.op_type in pol.op_types and node.name.startswith(pol.node_prefixes) and node.op_type not in ALWAYS_FP32
                and node.domain in ("", "ai.onnx"))


def _elem_types(model: Any) -> dict[str, int]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    types: dict[str, int] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in g.initializer:
        types[init.name] = init.data_type
    return types


def convert(model: Any, pol: Fp16) -> Conversion:
    """A copy of ``model`` with the policy's nodes in fp16 (I/O float32); see the module notes."""
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:
        raise MissingDependency("fp16 conversion (onnx)", "export") from exc
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    if m.functions or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in g.node for a in n.attribute):
        raise UsageError("fp16 conversion: the graph has subgraphs or local functions (tinyreg builds none)")
    types = _elem_types(m)
    fp16_nodes = [n for n in g.node if selected(n, pol)]
    if not fp16_nodes:
        raise UsageError("the family's fp16 policy selects no node of this graph")
    fp16_names = {id(n) for n in fp16_nodes}
    inits = {i.name: i for i in g.initializer}
    # float32 tensors produced in fp16 (outputs of fp16 nodes)
    half: set[str] = set()
    for n in fp16_nodes:
        for o in n.output:
            if o and types.get(o) is None:
                raise UsageError(f"fp16 conversion: no type inferred for {o} (output of {n.name})")
            if o and types[o] == FLOAT:
                half.add(o)
    consumers: dict[str, list[Any]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    new_nodes: list[Any] = []
    casts = 0
    to16: dict[str, str] = {}  # fp32 tensor -> its fp16 version
    to32: dict[str, str] = {}  # fp16 tensor -> its fp32 version

    def need16(name: str) -> str:
        nonlocal casts
        if name in half:
            return name
        if name in to16:
            return to16[name]
        if name in inits and all(id(c) in fp16_names for c in consumers.get(name, [])) and name not in {o.name for o in g.output}:
            arr = numpy_helper.to_array(inits[name])
            inits[name].CopyFrom(numpy_helper.from_array(_to_half(arr, name), name))
            to16[name] = name
            return name
        new = f"{name}__fp16"
        if name in inits:
            g.initializer.append(numpy_helper.from_array(_to_half(numpy_helper.to_array(inits[name]), name), new))
        else:
            new_nodes.append(helper.make_node("Cast", [name], [new], name=f"{name}__to_fp16", to=FLOAT16))
            casts += 1
        to16[name] = new
        return new

    def need32(name: str) -> str:
        nonlocal casts
        if name not in to32:
            new = f"{name}__fp32"
            new_nodes.append(helper.make_node("Cast", [name], [new], name=f"{name}__to_fp32", to=FLOAT))
            casts += 1
            to32[name] = new
        return to32[name]

    for n in g.node:
        if id(n) in fp16_names:
            for k, name in enumerate(n.input):
                if name and types.get(name) == FLOAT:
                    n.input[k] = need16(name)
        else:
            for k, name in enumerate(n.input):
                if name in half:
                    n.input[k] = need32(name)
        new_nodes.append(n)
    for out in g.output:  # graph outputs keep their name and float32 type
        if out.name in half:
            inner = f"{out.name}__fp16out"
            for n in new_nodes:
                n.output[:] = [inner if o == out.name else o for o in n.output]
                n.input[:] = [inner if i == out.name else i for i in n.input]
            new_nodes.append(helper.make_node("Cast", [inner], [out.name], name=f"{out.name}__to_fp32", to=FLOAT))
            casts += 1
    del g.node[:]
    g.node.extend(_toposort(new_nodes, {i.name for i in g.input} | {i.name for i in g.initializer}))
    del g.value_info[:]  # stale float32 annotations; onnxruntime infers them again
    onnx.checker.check_model(m, full_check=True)
    half_names = [n.name for n in fp16_nodes]
    kept = [n.name for n in g.node if n.name not in set(half_names) and not n.name.endswith(("__to_fp16", "__to_fp32"))]
    return Conversion(m, half_names, kept, casts)


def _to_half(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype != np.float32:
        raise UsageError(f"fp16 conversion: initializer {name} is {arr.dtype}, not float32")
    finite = arr[np.isfinite(arr)]
    if finite.size and float(np.max(np.abs(finite))) > FP16_MAX:
        raise UsageError(f"fp16 conversion: initializer {name} holds values beyond fp16's range (|x| > {FP16_MAX:g}); "
                         "the family's fp16 policy must keep its node fp32")
    return arr.astype(np.float16)


def _toposort(nodes: list[Any], available: set[str]) -> list[Any]:
    """Nodes in an order where every input is produced before it is read (Casts were appended after readers)."""
    have = set(available) | {""}
    out: list[Any] = []
    pending = list(nodes)
    while pending:
        rest = []
        for n in pending:
            if all(i in have for i in n.input):
                out.append(n)
                have.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise UsageError(f"fp16 conversion: the graph has a cycle or an unproduced input at {rest[0].name}")
        pending = rest
    return out


def convert_bytes(fp32: bytes, pol: Fp16) -> tuple[bytes, Conversion]:
    """fp16 model bytes (self-contained, producer tinyreg) and what was converted."""
    import onnx

    conv = convert(onnx.load_from_string(fp32), pol)
    conv.model.producer_name, conv.model.producer_version = "tinyreg", ""
    return conv.model.SerializeToString(), conv


NO_FAMILY_FP16_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "Relu", "MaxPool", "AveragePool")


def no_family_policy() -> Fp16:
    """Entries without a family (gated on their pinned input set): the compute ops in fp16, everything else fp32."""
    from registry.plugin import Fp16

    return Fp16(op_types=NO_FAMILY_FP16_OPS, node_prefixes=("",), rationale=(
        "entry without a family: Conv, ConvTranspose, MatMul, Gemm, Relu and pooling run in fp16; every other "
        "operator (normalisation, reductions, elementwise arithmetic) stays fp32"))


def fp16_entry(registry: Any, entry_id: str, *, gate_seed: int = 0, inputs: Any = None, pairs: int | None = None,
               sizes: Any = None) -> Entry:
    """Convert, gate, and (only on a pass) write ``<basename>.fp16.onnx`` with its pin and gate record.

    A family entry is gated on its family's samples; an entry without a family, or one given ``inputs``,
    on its (given, then pinned) input set. Both go through the same :class:`registry.quant.gate.Gate`.
    ``pairs``/``sizes``: family samples per size and the sizes (default: the family's fp16 policy).
    """
    from registry._internal.hashing import sha256_bytes
    from registry.errors import CheckFailed
    from registry.export.smoke import tool_versions
    from registry.onnx.allowlist import check_model, errors_only, load_allowlist
    from registry.onnx.inspect import inspect_bytes
    from registry.plugin import Fp16 as Fp16Policy
    from registry.quant.gate import Gate, PinnedInputs, entry_family
    from registry.quant.inputs import FIELD, input_set, require_v2
    from registry.runtime.loader import verified_model_bytes
    from registry.store.document import find_registry, read_registry
    from registry.store.entries import write_entry
    from registry.store.layout import fp16_rel, inputs_rel

    path = find_registry(registry)
    reg = read_registry(path)
    require_v2(reg)
    entry = reg.get(entry_id)
    family = entry.get("family")
    if isinstance(family, str):
        pol = entry_family(entry).fp16
        if not isinstance(pol, Fp16Policy):
            raise UsageError(f"family '{family}' has no fp16 sibling: {pol.reason}")
    else:
        pol = no_family_policy()
    fp32 = verified_model_bytes(reg, entry)
    half, conv = convert_bytes(fp32, pol)
    allow = load_allowlist()
    bad = errors_only(check_model(inspect_bytes(half, "fp16"), allow, "fp16" if "fp16" in allow.profile_names() else "fp32"))
    if bad:
        raise CheckFailed(f"the fp16 graph breaks the fp16 allowlist profile: {bad[0]}")
    artifacts: dict[str, bytes] = {fp16_rel(str(entry["onnx"])): half}
    fields: dict[str, Any] = {"id": entry_id}
    source = None
    if inputs is not None or not isinstance(family, str):
        s = input_set(reg, entry, inputs)
        rel = inputs_rel(str(entry["onnx"])) if s.new else str(entry[FIELD])
        source = PinnedInputs(s.arrays, rel, sha256_bytes(s.data).sha256)
        if s.new:
            artifacts[rel] = s.data
            fields[FIELD] = rel
    gate = Gate.prepare(reg, entry, seed=gate_seed, fp32_bytes=fp32, source=source, precision="fp16", pairs=pairs,
                        sizes=sizes)
    res = gate.judge(half, "fp16")
    if not res.passed:
        why = (f"{res.nonfinite} non-finite outputs (fp16 overflow)" if res.nonfinite else
               f"drop {res.drop:.3g} (95% upper {res.drop_ci95[1]:.3g}, budget {res.budget:g}), max |error| "
               f"{res.max_abs_diff:.3g} (limit {res.max_abs_budget:g})")
        raise CheckFailed(f"the fp16 candidate of '{entry_id}' fails its gate: {why}; nothing written")
    fields["fp16_sha256"] = sha256_bytes(half).sha256
    fields["fp16"] = {
        "settings": {"op_types": list(pol.op_types), "node_prefixes": list(pol.node_prefixes), "kept_fp32": pol.rationale,
                     "fp16_nodes": len(conv.fp16_nodes), "fp32_nodes": len(conv.fp32_nodes), "casts": conv.casts,
                     "io": "float32 (the entry's contract)", "converter": "tinyreg (registry.quant.fp16)",
                     "tools": tool_versions("onnxruntime", "onnx")},
        "gate": res.as_json(),
    }
    # the registry was read without the lock: commit only if the fp32 model is still the one converted and gated
    return write_entry(path, fields, artifacts, new_artifact=False, expect={entry_id: str(entry["sha256"])})


def emulate(fp16: bytes) -> bytes:
    """An fp32 graph that computes what a device with fp16 kernels computes from the fp16 graph ``fp16``.

    onnxruntime's CPU provider has no fp16 kernels for most operators on x86 (Conv included on CPUs
    without AVX512-FP16): it runs an fp16 node in fp32 between Casts it inserts, and its optimiser drops
    the fp16 rounding of activations (measured, onnxruntime 1.32: an fp16 Conv whose output is 8.1e5
    returns 8.1e5, not inf). Gating only that run would measure weight rounding and miss overflow.

    Here every fp16 tensor becomes float32 and is rounded through fp16 where it is produced (a
    ``Cast`` to fp16 and back after every node with an fp16 output, and after every Cast to fp16);
    fp16 initializers are widened exactly. So storage is fp16 -- rounding, overflow to inf, small
    constants flushed -- and arithmetic inside a node is fp32, as on GPU tensor cores (fp16 in and out,
    fp32 accumulation). The gate judges this graph *and* the fp16 file as the CPU runs it.
    """
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load_from_string(fp16)
    g = m.graph
    types = _elem_types(m)
    for i, init in enumerate(g.initializer):
        if init.data_type == FLOAT16:
            g.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name))
    new_nodes = []
    for n in g.node:
        outs16 = [o for o in n.output if o and types.get(o) == FLOAT16]
        is_cast16 = n.op_type == "Cast" and any(a.name == "to" and a.i == FLOAT16 for a in n.attribute)
        if is_cast16:  # the rounding point itself: keep it, widen after it
            outs16 = list(n.output)
        rename = {o: f"{o}__half" for o in outs16}
        n.output[:] = [rename.get(o, o) for o in n.output]
        new_nodes.append(n)
        for o, raw in rename.items():
            if is_cast16:
                new_nodes.append(helper.make_node("Cast", [raw], [o], name=f"{o}__widen", to=FLOAT))
            else:
                new_nodes.append(helper.make_node("Cast", [raw], [f"{o}__r16"], name=f"{o}__round", to=FLOAT16))
                new_nodes.append(helper.make_node("Cast", [f"{o}__r16"], [o], name=f"{o}__widen", to=FLOAT))
    del g.node[:]
    g.node.extend(new_nodes)
    del g.value_info[:]
    out: bytes = m.SerializeToString()
    return out
