"""``tinyreg check-ops``: run the allowlist over a model file or an entry's graphs, and find the ops
onnxruntime's optimiser puts into the graphs it actually runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry._internal.hashing import read_file, read_pinned
from registry._internal.paths import confine
from registry.onnx.allowlist import GRAPH_PROFILES, Allowlist, Violation, check_model
from registry.onnx.inspect import canon_domain, inspect_bytes
from registry.store.document import find_registry, read_registry
from registry.store.layout import fp16_rel, int8_rel
from registry.store.types import has_int8


@dataclass(frozen=True)
class OpsResult:
    model: str
    profile: str
    ops: frozenset[tuple[str, str]]
    violations: tuple[Violation, ...]


def check_file(path: Path, allow: Allowlist, profile: str | None = None) -> OpsResult:
    data = read_file(path, cap="model")
    prof = profile or ("int8" if path.name.endswith(".int8.onnx") else "fp16" if path.name.endswith(".fp16.onnx") else "fp32")
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
    if has_int8(entry):
        graphs.append((int8_rel(str(entry["onnx"])), entry["int8_sha256"], "int8"))
    if isinstance(entry.get("fp16_sha256"), str):
        graphs.append((fp16_rel(str(entry["onnx"])), entry["fp16_sha256"], "fp16"))
    for rel, sha, role in graphs:
        # fp32/fp16/int8 pick the graph they govern; any other profile (vmafx: a runtime's own list) checks every graph
        if profile in GRAPH_PROFILES and profile != role:
            continue
        prof = profile if profile and profile not in GRAPH_PROFILES else role
        path = confine(reg.root, rel)
        data = read_pinned(path, str(sha))
        info = inspect_bytes(data, rel)
        v = check_model(info, allow, prof, model_dir=path.parent)
        results.append(OpsResult(rel, prof, frozenset(info.op_set()), tuple(v)))
    return results

def optimized_ops(data: bytes, *, nchwc: bool) -> set[tuple[str, str]]:
    """(domain, op) of every node of the graph onnxruntime runs for ``data``.

    The model is optimised exactly as ``registry.load`` does it (tinyreg's session options:
    ORT_ENABLE_ALL) and the optimised graph is read back from ``optimized_model_filepath``.
    ``nchwc=False`` disables the NCHWc layout transformer, as
    ``onnxruntime.tools.convert_onnx_models_to_ort`` does by default (its ops are x86-specific);
    ``nchwc=True`` keeps it, as a session on an AVX2/AVX-512 machine runs.
    The graph is also optimised at the basic level and its ops added: a reduced build's
    'Runtime' optimisation style loads that graph and replays the rest (so an op the full level
    folds away, such as the backbone's batch ``Slice``, is still required).
    """
    import tempfile

    import onnx
    import onnxruntime as ort

    from registry.errors import IntegrityError
    from registry.onnx.inspect import external_tensors, parse_model
    from registry.runtime.loader import default_session_options

    left = external_tensors(parse_model(data, "model"))
    if left:  # onnxruntime would open the named file by itself: only self-contained bytes get a session
        raise IntegrityError(f"{left[0][0]} refers to external data; refusing to create a session")
    models = []
    for level in (ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC):
        so = default_session_options()
        so.graph_optimization_level = level
        so.log_severity_level = 3  # the NCHWc "hardware specific" notice is expected here
        with tempfile.TemporaryDirectory(prefix="tinyreg-ortopt-") as d:
            out = Path(d) / "optimized.onnx"
            so.optimized_model_filepath = str(out)
            ort.InferenceSession(data, so, providers=["CPUExecutionProvider"],
                                 disabled_optimizers=None if nchwc else ["NchwcTransformer"])
            models.append(onnx.load(str(out), load_external_data=False))
    found: set[tuple[str, str]] = set()

    def walk(g: Any) -> None:
        for n in g.node:
            found.add((canon_domain(n.domain), n.op_type))
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for sub in a.graphs:
                    walk(sub)

    for model in models:
        walk(model.graph)
    return found


def registry_runtime_ops(registry: Path, profile: str) -> tuple[dict[str, set[str]], list[str]]:
    """Ops of every graph of ``registry`` that ``profile`` covers, after onnxruntime's optimiser
    (with and without NCHWc): fp32 graphs for 'fp32'; fp32 and int8 graphs otherwise."""
    from registry.runtime.loader import verified_model_bytes

    reg = read_registry(registry)
    ops: dict[str, set[str]] = {}
    models: list[str] = []
    for entry in reg.entries:
        variants = [False] + ([True] if profile != "fp32" and has_int8(entry) else [])
        for int8 in variants:
            data = verified_model_bytes(reg, entry, int8=int8)
            for nchwc in (False, True):
                for dom, op in optimized_ops(data, nchwc=nchwc):
                    ops.setdefault(dom, set()).add(op)
            models.append(int8_rel(str(entry["onnx"])) if int8 else str(entry["onnx"]))
    return ops, models
