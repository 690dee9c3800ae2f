"""The VMAFx fork's own consumers of a registry folder, modelled from their documented behaviour.

Written for these tests from the description of the fork's code (lusoris/vmaf at
c2a3c7e0: ``ai/scripts/validate_model_registry.py``, ``libvmaf/src/dnn/model_loader.c``,
``libvmaf/src/dnn/op_allowlist.c`` + ``onnx_scan.c``); no code of the fork is copied.
They read what the fork reads, the way it reads it:

* ``gate``: the CI gate. JSON Schema 2020-12 against the ``registry.schema.json`` of the
  folder, then unique ids, each ``onnx`` present with its ``sha256``, a sidecar
  ``<basename>.json`` for every non-smoke entry, ``int8_sha256`` present (and matching
  ``<basename>.int8.onnx`` when that exists) when ``quant_mode`` is not fp32, and a
  ``sigstore_bundle`` ending in ``.sigstore.json``.
* ``find_bundle`` / ``sidecar_fields``: libvmaf's text scans, which use no JSON parser. The
  registry (at most 1 MiB) is searched for the string ``"onnx"``; the first string value after
  the next ``:`` is compared with the model's file name; on a match the first
  ``"sigstore_bundle"`` is taken unless another ``"onnx"`` comes first. A value that is not a
  string where a string is expected ends the whole lookup (EBADMSG). Sidecar fields are the
  first occurrence of each key anywhere in the text.
* ``refused_ops``: the runtime op allowlist, by op name only (no domain), over every node of
  the graph and of every subgraph held by an attribute (``Loop``/``If`` bodies), at most 8
  levels deep and 16 ``Loop`` nodes in all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGISTRY_CAP = 1 << 20  # libvmaf refuses a registry.json (and a sidecar) over 1 MiB

# libvmaf/src/dnn/op_allowlist.c (op names; Clip is listed twice there)
FORK_RUNTIME_OPS = frozenset((
    "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Slice", "Gather",
    "Cast", "Shape", "Expand", "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Sqrt", "Pow", "Exp", "Log",
    "Clip", "Min", "Max", "Sum", "Mean", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
    "GlobalAveragePool", "GlobalMaxPool", "Gemm", "MatMul", "Conv", "ConvTranspose", "MaxPool",
    "AveragePool", "Resize", "BatchNormalization", "LayerNormalization", "InstanceNormalization",
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "Elu", "Selu", "Softplus", "Softsign", "Gelu",
    "Erf", "HardSigmoid", "HardSwish", "PRelu", "Dropout", "QuantizeLinear", "DequantizeLinear",
    "Constant", "ConstantOfShape", "Pad", "Reciprocal", "ReduceProd", "GatherND", "ScatterND",
    "BitShift", "Loop", "If"
))
MAX_DEPTH = 8
MAX_LOOPS = 16


# ---------------------------------------------------------------- the CI gate

def gate(registry: Path, schema: Path | None = None) -> tuple[int, list[str]]:
    """(exit code, errors): 0 pass, 1 findings, 2 bad invocation (no registry or schema file)."""
    from jsonschema import Draft202012Validator

    schema = schema or registry.parent / "registry.schema.json"
    if not registry.is_file():
        return 2, [f"registry not found: {registry}"]
    if not schema.is_file():
        return 2, [f"schema not found: {schema}"]
    try:
        doc = json.loads(registry.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        return 1, [f"registry JSON parse error: {exc}"]
    errors = [f"schema: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
              for e in Draft202012Validator(json.loads(schema.read_text("utf-8"))).iter_errors(doc)]
    folder = registry.parent
    seen: set[str] = set()
    for i, m in enumerate(doc.get("models", [])):
        mid = m.get("id", f"<index {i}>")
        if mid in seen:
            errors.append(f"{mid}: duplicate model id")
        seen.add(mid)
        rel = m.get("onnx", "")
        if not rel:
            continue
        model = folder / rel
        if not model.is_file():
            errors.append(f"{mid}: missing ONNX file {model}")
            continue
        if hashlib.sha256(model.read_bytes()).hexdigest() != m.get("sha256", ""):
            errors.append(f"{mid}: sha256 mismatch")
        if not m.get("smoke", False) and not model.with_suffix(".json").is_file():
            errors.append(f"{mid}: missing sidecar {model.with_suffix('.json').name}")
        if m.get("quant_mode", "fp32") != "fp32":
            want = m.get("int8_sha256")
            i8 = model.with_suffix("").with_suffix(".int8.onnx")
            if not want:
                errors.append(f"{mid}: quant_mode={m['quant_mode']} requires int8_sha256")
            elif i8.is_file() and hashlib.sha256(i8.read_bytes()).hexdigest() != want:
                errors.append(f"{mid}: int8_sha256 mismatch")
        bundle = m.get("sigstore_bundle")
        if bundle and not bundle.endswith(".sigstore.json"):
            errors.append(f"{mid}: sigstore_bundle must end with .sigstore.json")
    return (1 if errors else 0), errors


# ---------------------------------------------------------------- the C loader's text scans

class LoaderError(Exception):
    """The errno libvmaf would return (ENOENT, EBADMSG, EFBIG)."""


def read_capped(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) > REGISTRY_CAP:
        raise LoaderError("EFBIG")
    return data


def _string_after_colon(text: bytes, start: int) -> tuple[bytes, int] | None:
    """The string value after the first ':' at or after ``start``: (value, index of its closing quote).

    None when there is no ':' (ENOENT for the caller); LoaderError(EBADMSG) when what follows is not a string.
    """
    colon = text.find(b":", start)
    if colon < 0:
        return None
    p = colon + 1
    while p < len(text) and text[p : p + 1].isspace():
        p += 1
    if text[p : p + 1] != b'"':
        raise LoaderError("EBADMSG")
    q = text.find(b'"', p + 1)
    if q < 0:
        raise LoaderError("EBADMSG")
    return text[p + 1 : q], q


def find_bundle(text: bytes, basename: str) -> str:
    """The ``sigstore_bundle`` libvmaf resolves for the model file ``basename`` (LoaderError otherwise)."""
    want = basename.encode()
    cursor = 0
    while (at := text.find(b'"onnx"', cursor)) >= 0:
        got = _string_after_colon(text, at)
        if got is None:
            raise LoaderError("ENOENT")
        value, q = got
        if value == want:
            nxt = text.find(b'"onnx"', q)
            key = text.find(b'"sigstore_bundle"', q)
            if key < 0 or (nxt >= 0 and key > nxt):
                raise LoaderError("ENOENT")
            bundle = _string_after_colon(text, key)
            if bundle is None:
                raise LoaderError("EBADMSG")
            return bundle[0].decode()
        cursor = q + 1
    raise LoaderError("ENOENT")


def _value_at(text: bytes, key: str) -> int | None:
    """Where the value of the first ``"key"`` in the text starts (past the colon and blanks), as libvmaf scans."""
    at = text.find(f'"{key}"'.encode())
    if at < 0:
        return None
    colon = text.find(b":", at + len(key) + 2)
    if colon < 0:
        return None
    p = colon + 1
    while p < len(text) and text[p : p + 1].isspace():
        p += 1
    return p


def _first_string(text: bytes, key: str) -> str | None:
    p = _value_at(text, key)
    if p is None or text[p : p + 1] != b'"':
        return None
    q = text.find(b'"', p + 1)
    return None if q < 0 else text[p + 1 : q].decode()


def _first_int(text: bytes, key: str) -> int | None:
    p = _value_at(text, key)
    if p is None:
        return None
    end = p + (1 if text[p : p + 1] in (b"-", b"+") else 0)
    while end < len(text) and text[end : end + 1].isdigit():
        end += 1
    digits = text[p:end]
    return int(digits) if digits.lstrip(b"+-") else None


SIDECAR_STRINGS = ("kind", "name", "input_name", "output_name", "quant_mode")


def sidecar_fields(text: bytes) -> dict[str, Any]:
    """What libvmaf takes from a sidecar: each key's first occurrence anywhere in the text."""
    if len(text) > REGISTRY_CAP:
        raise LoaderError("EFBIG")
    out: dict[str, Any] = {k: _first_string(text, k) for k in SIDECAR_STRINGS}
    out["onnx_opset"] = _first_int(text, "onnx_opset")
    return out


# ---------------------------------------------------------------- the runtime op allowlist

@dataclass
class _Scan:
    loops: int = 0


def refused_ops(model_bytes: bytes) -> list[str]:
    """Op types libvmaf's runtime allowlist refuses in this graph (empty: it loads), in graph order.

    Past the depth or Loop caps the whole model is refused; that is reported as ``<depth>`` / ``<loops>``.
    """
    import onnx

    model = onnx.load_from_string(model_bytes)
    state = _Scan()
    out: list[str] = []

    def graph(g: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            out.append("<depth>")
            return
        for node in g.node:
            if node.op_type not in FORK_RUNTIME_OPS:
                out.append(node.op_type)
            if node.op_type == "Loop":
                state.loops += 1
                if state.loops > MAX_LOOPS:
                    out.append("<loops>")
            for attr in node.attribute:
                if attr.HasField("g"):
                    graph(attr.g, depth + 1)
                for sub in attr.graphs:
                    graph(sub, depth + 1)

    graph(model.graph, 0)
    return out


FORK_KEYS = ("name", "kind", "input_name", "output_name", "onnx_opset", "quant_mode")


def rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row the text holds: the entries, and the v1 rows a migration left out (the fork still scans those)."""
    left = (doc.get("migration") or {}).get("left_out") or []
    return [*doc.get("models", []), *left]


def loader_problems(registry: Path) -> list[str]:
    """Where libvmaf's text lookups disagree with the document (empty: every entry resolves to its own values)."""
    from registry.store.layout import sidecar_rel

    text = read_capped(registry)
    doc = json.loads(text)
    problems = []
    for row in rows(doc):
        name = Path(row["onnx"]).name
        want = row.get("sigstore_bundle")
        try:
            got: str | None = find_bundle(text, name)
        except LoaderError as exc:
            got = None if str(exc) == "ENOENT" else f"<{exc}>"
        if got != want:
            problems.append(f"{row['id']}: bundle lookup of {name} gives {got!r}, the row says {want!r}")
        side = registry.parent / sidecar_rel(row["onnx"])
        if not side.is_file():
            continue
        side_text = side.read_bytes()
        parsed = json.loads(side_text)
        scanned = sidecar_fields(side_text)
        for key in FORK_KEYS:
            if scanned[key] != parsed.get(key):  # absent at the top level: the scan must find nothing either
                problems.append(f"{row['id']}: sidecar {key} reads {scanned[key]!r}, the sidecar says {parsed.get(key)!r}")
    return problems
