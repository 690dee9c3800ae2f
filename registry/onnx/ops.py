"""``tinyreg check-ops``: run the allowlist over a model file or an entry's graphs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry._internal.hashing import read_file, read_pinned
from registry._internal.paths import confine
from registry.onnx.allowlist import Allowlist, Violation, check_model
from registry.onnx.inspect import inspect_bytes
from registry.store.document import find_registry, read_registry
from registry.store.layout import int8_rel


@dataclass(frozen=True)
class OpsResult:
    model: str
    profile: str
    ops: frozenset[tuple[str, str]]
    violations: tuple[Violation, ...]


def check_file(path: Path, allow: Allowlist, profile: str | None = None) -> OpsResult:
    data = read_file(path)
    prof = profile or ("int8" if path.name.endswith(".int8.onnx") else "fp32")
    info = inspect_bytes(data, str(path))
    v = check_model(info, allow, prof, model_dir=path.parent)
    return OpsResult(str(path), prof, frozenset(info.op_set()), tuple(v))


def check_target(target: str, allow: Allowlist, profile: str | None, registry: Path | None) -> list[OpsResult]:
    """A path ending in .onnx is checked as a file; anything else is an entry id."""
    if target.endswith(".onnx") or Path(target).is_file():
        return [check_file(Path(target), allow, profile)]
    reg = read_registry(find_registry(registry))
    entry = reg.get(target)
    results = []
    graphs = [(str(entry["onnx"]), entry.get("sha256"), "fp32")]
    if isinstance(entry.get("int8_sha256"), str):
        graphs.append((int8_rel(str(entry["onnx"])), entry["int8_sha256"], "int8"))
    for rel, sha, prof in graphs:
        if profile and profile != prof:
            continue
        path = confine(reg.root, rel)
        data = read_pinned(path, str(sha))
        info = inspect_bytes(data, rel)
        v = check_model(info, allow, prof, model_dir=path.parent)
        results.append(OpsResult(rel, prof, frozenset(info.op_set()), tuple(v)))
    return results
