"""The op allowlist: one machine-readable file with fp32 and int8 profiles."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from registry._internal.jsonio import loads_json
from registry._internal.safeio import read_raw
from registry.errors import InputError, UsageError
from registry.onnx.inspect import STD_DOMAIN, ModelInfo, canon_domain

GRAPH_PROFILES = ("fp32", "fp16", "int8")  # each governs one graph of an entry (the float graph, its fp16 and int8 siblings)
VMAFX_PROFILE = "vmafx"  # the VMAFx fork's runtime allowlist: governs every graph libvmaf may load


@dataclass(frozen=True)
class Violation:
    code: str  # "domain:opset:op" for an operator, else a short rule name
    node: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f" (node {self.node})" if self.node else ""
        return f"{self.code}{where}: {self.message}"

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "node": self.node, "message": self.message, "severity": self.severity}


@dataclass(frozen=True)
class Allowlist:
    source: str
    doc: dict[str, Any]

    @property
    def opset_min(self) -> int:
        return int(self.doc["opset"]["min"])

    @property
    def opset_max(self) -> int:
        return int(self.doc["opset"]["max"])

    def profile_names(self) -> list[str]:
        return sorted(self.doc["profiles"])

    def ops(self, profile: str) -> dict[str, set[str]]:
        profiles = self.doc["profiles"]
        if profile not in profiles:
            raise UsageError(f"allowlist {self.source}: no profile '{profile}' (have {', '.join(sorted(profiles))})")
        out: dict[str, set[str]] = {}
        for name in _chain(profiles, profile, f"allowlist {self.source}: profile"):
            for dom, ops in profiles[name].items():
                if dom != "inherits":
                    out.setdefault(canon_domain(dom), set()).update(ops)
        return out


def _chain(profiles: dict[str, Any], name: str, where: str) -> list[str]:
    """``name`` and the profiles it inherits from, nearest first; InputError on a loop."""
    seen: list[str] = []
    at: str | None = name
    while at is not None:
        if at in seen:
            raise InputError(f"{where} inheritance loop at '{at}'")
        seen.append(at)
        at = profiles[at].get("inherits")
    return seen


@functools.cache
def _schema_validator() -> Any:
    import json

    from jsonschema import Draft202012Validator

    schema = json.loads(resources.files("registry.onnx").joinpath("data", "allowlist.schema.json").read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _validate(doc: Any, source: str) -> dict[str, Any]:
    """Check an allowlist against ``schemas/allowlist.schema.json``: one ``InputError`` line naming the first bad field."""
    errors = sorted(_schema_validator().iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        msg = err.message if len(err.message) <= 160 else err.message[:157] + "..."
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InputError(f"allowlist {source}: malformed at {where}: {msg}{more} (see schemas/allowlist.schema.json)")
    profiles = doc["profiles"]
    for name, prof in sorted(profiles.items()):
        parent = prof.get("inherits")
        if parent is not None and parent not in profiles:
            raise InputError(f"allowlist {source}: profiles/{name}/inherits: no profile '{parent}'")
    for name in sorted(profiles):
        _chain(profiles, name, f"allowlist {source}: profiles/{name}/inherits:")
    if doc["opset"]["min"] > doc["opset"]["max"] or doc["ir_version"]["min"] > doc["ir_version"]["max"]:
        raise InputError(f"allowlist {source}: opset or ir_version: min is larger than max")
    return dict(doc)


def load_allowlist(path: str | os.PathLike[str] | None = None) -> Allowlist:
    if path is None:
        text = resources.files("registry.onnx").joinpath("data", "op_allowlist.json").read_bytes()
        source = "builtin op_allowlist.json"
    else:
        source = str(path)
        try:
            text = read_raw(Path(path), "policy")
        except OSError as exc:
            raise InputError(f"allowlist {source}: cannot read ({exc.strerror})") from exc
    return Allowlist(source, _validate(loads_json(text, f"allowlist {source}"), source))


def _is_standard_op(op_type: str) -> bool:
    import onnx.defs

    return bool(onnx.defs.has(op_type))


def _check_external(info: ModelInfo, model_dir: Path | None, limits: dict[str, Any]) -> list[Violation]:
    out: list[Violation] = []
    files: set[str] = set()
    total = 0
    for ref in info.external:
        loc = ref.location
        where = ref.where
        pure = PurePosixPath(loc)
        if not loc or "\x00" in loc or pure.is_absolute() or ".." in pure.parts or "\\" in loc:
            out.append(Violation("external_data", where, f"location {loc!r} is not a plain relative path"))
            continue
        if model_dir is not None:
            try:
                root = Path(os.path.realpath(model_dir))
                real = Path(os.path.realpath(root / loc))
            except (OSError, ValueError) as exc:
                out.append(Violation("external_data", where, f"location {loc!r} cannot be resolved ({exc})"))
                continue
            if root not in real.parents:
                out.append(Violation("external_data", where, f"location {loc!r} resolves outside the model folder"))
                continue
        if ref.offset < 0 or (ref.length is not None and ref.length < 0):
            out.append(Violation("external_data", where, "negative or malformed offset/length"))
        files.add(loc)
        total += ref.length if ref.length is not None else ref.nbytes
    cap_files = int(limits.get("external_data_files", 4))
    if len(files) > cap_files:
        out.append(Violation("external_data", "", f"{len(files)} external data files (cap {cap_files})"))
    cap_bytes = int(limits.get("external_data_bytes", 1 << 28))
    if total > cap_bytes:
        out.append(Violation("external_data", "", f"{total} bytes of external data (cap {cap_bytes})"))
    return out


def check_model(
    info: ModelInfo, allow: Allowlist, profile: str = "fp32", *, model_dir: Path | None = None
) -> list[Violation]:
    """Every way ``info`` breaks the allowlist profile; empty when clean."""
    doc = allow.doc
    ops = allow.ops(profile)
    out: list[Violation] = []
    irmin, irmax = int(doc["ir_version"]["min"]), int(doc["ir_version"]["max"])
    if not irmin <= info.ir_version <= irmax:
        out.append(Violation("ir_version", "", f"ir_version {info.ir_version} outside {irmin}..{irmax}"))
    opset = info.opset
    if opset is None:
        out.append(Violation("opset", "", "no ai.onnx opset import"))
    elif not allow.opset_min <= opset <= allow.opset_max:
        out.append(Violation("opset", "", f"ai.onnx opset {opset} outside {allow.opset_min}..{allow.opset_max}"))
    used = info.used_domains()
    for dom in sorted(used - set(info.opset_imports)):
        out.append(Violation(f"{dom}:?:*", "", f"domain {dom} is used but not imported"))
    for dom in sorted(set(info.opset_imports) - used - {STD_DOMAIN}):
        out.append(Violation(f"{dom}:{info.opset_imports[dom]}:*", "", f"domain {dom} is imported but no node uses it", "warning"))
    if not doc.get("allow_local_functions", False):
        for dom, name in info.functions:
            out.append(
                Violation(f"{dom}:{info.opset_imports.get(dom, '?')}:{name}", "", "model-local function (functions hide ops; inline it)")
            )
    for node in info.nodes:
        allowed = ops.get(node.domain)
        if allowed is not None and node.op_type in allowed:
            continue
        version = info.opset_imports.get(node.domain, "?")
        where = "" if node.where == "graph" else f" in {node.where}"
        if node.domain != STD_DOMAIN and node.domain != "ai.onnx.ml" and _is_standard_op(node.op_type):
            msg = f"custom-domain op reuses the standard name {node.op_type}{where}"
        elif node.op_type in ("If", "Loop", "Scan"):
            msg = f"control flow with nested subgraphs is not allowed{where}"
        elif allowed is None:
            msg = f"domain {node.domain} is not allowed in profile {profile}{where}"
        else:
            msg = f"op not in profile {profile}{where}"
        out.append(Violation(f"{node.domain}:{version}:{node.op_type}", node.name, msg))
    limits = doc.get("limits", {})
    out.extend(_check_external(info, model_dir, limits))
    cap = int(limits.get("initializer_bytes", 1 << 28))
    if info.initializer_bytes > cap:
        out.append(Violation("initializers", "", f"{info.initializer_bytes} bytes of initializers (cap {cap})"))
    return out


def errors_only(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.severity == "error"]


def ort_reduced_config(allow: Allowlist, profile: str, runtime_ops: dict[str, set[str]] | None = None,
                       models: list[str] | None = None) -> str:
    """ONNX Runtime reduced-operator config (``domain;opset;op1,op2``).

    ``runtime_ops``: ops onnxruntime's optimiser introduces into the graphs it runs (fused and
    contrib ops such as com.microsoft FusedConv and QLinearConv, NCHWc layout ops), found by
    optimising ``models`` (``registry.runtime.ops.registry_runtime_ops``); a build that lacks them
    cannot run the optimised graphs.
    """
    ops = {dom: set(names) for dom, names in allow.ops(profile).items()}
    for dom, names in (runtime_ops or {}).items():
        ops.setdefault(dom, set()).update(names)
    lines = [f"# ONNX Runtime reduced operator config for tinyreg profile '{profile}' ({allow.source})"]
    if models is not None:
        lines.append("# plus the ops onnxruntime's optimiser (ORT_ENABLE_ALL, with and without NCHWc) puts into: "
                     + (", ".join(models) or "no models"))
    for dom, names in sorted(ops.items()):
        versions = range(allow.opset_min, allow.opset_max + 1) if dom == STD_DOMAIN else range(1, 2)
        for v in versions:
            lines.append(f"{dom};{v};{','.join(sorted(names))}")
    return "\n".join(lines) + "\n"
