"""``tinyreg export dists``: real weights -> ONNX graph -> pinned registry entry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry.allowlist import check_model, errors_only, load_allowlist
from registry.errors import CheckFailed, UsageError
from registry.families.dists import ALPHA_BETA, FAMILY
from registry.families.dists.graph import build_dists, normalise_weights
from registry.families.dists.weights import load_alpha_beta
from registry.families.vgg import VGG16, load_vgg16
from registry.fetch import fetch_pinned
from registry.onnx_inspect import inspect_model
from registry.store import Entry

EXPORTER = "tinyreg.families.dists.export/1"


@dataclass(frozen=True)
class Weights:
    """Loaded, pin-checked weights plus where they came from."""

    state: dict[str, np.ndarray]
    alpha: np.ndarray  # raw, flattened
    beta: np.ndarray
    w_sum: float
    upstream: list[dict[str, Any]]


def load_weights(
    vgg16: str, vgg16_sha256: str, alpha_beta: str, alpha_beta_sha256: str, *, cache_dir: Path | None = None,
    progress: bool = True,
) -> Weights:
    vdata = fetch_pinned(vgg16, vgg16_sha256, VGG16.filename, cache_dir=cache_dir, progress=progress)
    state = load_vgg16(vdata)
    from registry.families.vgg import stage_widths

    n = 3 + sum(stage_widths(state))
    adata = fetch_pinned(alpha_beta, alpha_beta_sha256, ALPHA_BETA.filename, cache_dir=cache_dir, progress=progress)
    alpha, beta, w_sum = load_alpha_beta(adata, n)

    def up(u: Any, source: str, sha: str) -> dict[str, Any]:
        official = sha.lower() == u.sha256
        rec = {"name": u.name if official else f"{u.name} (user-pinned, not the upstream file)",
               "sha256": sha.lower(), "license": u.license, "official": official}
        if source.startswith(("http://", "https://")):
            rec["url"] = source
        elif official:
            rec["url"] = u.url
        return rec

    return Weights(state, alpha, beta, w_sum, [up(VGG16, vgg16, vgg16_sha256), up(ALPHA_BETA, alpha_beta, alpha_beta_sha256)])


def build_model(w: Weights, opset: int) -> Any:
    a, b = normalise_weights(w.alpha, w.beta, w.w_sum)
    meta = {"tinyreg.family": "dists", "tinyreg.smoke": "false"}
    for i, u in enumerate(w.upstream):
        meta[f"tinyreg.upstream.{i}.sha256"] = u["sha256"]
    return build_dists(w.state, a, b, opset=opset, doc="DISTS (Ding et al., TPAMI 2020), VGG-16 backbone. Output: 1 - similarity.",
                       metadata=meta)


def export(
    registry_path: Path,
    *,
    vgg16: str = VGG16.url,
    vgg16_sha256: str = VGG16.sha256,
    alpha_beta: str = ALPHA_BETA.url,
    alpha_beta_sha256: str = ALPHA_BETA.sha256,
    opset: int = 17,
    entry_id: str | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Entry:
    from registry._internal.onnxbuild import SUPPORTED_OPSETS
    from registry.entries import write_entry
    from registry.smoke import tool_versions

    if opset not in SUPPORTED_OPSETS:
        raise UsageError(f"opset {opset} is not supported by the DISTS exporter (supported: {', '.join(map(str, SUPPORTED_OPSETS))})")
    w = load_weights(vgg16, vgg16_sha256, alpha_beta, alpha_beta_sha256, cache_dir=cache_dir, progress=progress)
    model = build_model(w, opset)
    info = inspect_model(model)
    if info.opset != opset:  # never a silent other opset
        raise CheckFailed(f"exporter produced opset {info.opset}, asked for {opset}")
    if info.op_set() != set(FAMILY.ops):
        raise CheckFailed(f"exported op set {sorted(info.op_set())} differs from the family's declared op set")
    bad = errors_only(check_model(info, load_allowlist(), "fp32"))
    if bad:
        raise CheckFailed(f"exported graph breaks the op allowlist: {bad[0]}")
    import onnx

    onnx.checker.check_model(model)
    eid = entry_id or FAMILY.default_id
    onnx_rel = f"{eid}.onnx"
    official = all(u["official"] for u in w.upstream)
    fields: dict[str, Any] = {
        "id": eid,
        "kind": FAMILY.kind,
        "family": FAMILY.name,
        "onnx": onnx_rel,
        "smoke": False,
        "placeholder_for": None,
        "opset": opset,
        "description": f"{FAMILY.title}: {FAMILY.score_convention}."
        + ("" if official else " Built from user-pinned weights, not the upstream files."),
        "notes": f"{FAMILY.description} Reference: {FAMILY.reference}",
        "license": FAMILY.license,
        "license_url": FAMILY.license_url,
        "license_notes": FAMILY.license_notes,
        "quant_accuracy_budget_plcc": FAMILY.quant_accuracy_budget_plcc,
        "io": info.io_json(),
        "input_conventions": FAMILY.input_conventions,
        "provenance": {
            "exporter": EXPORTER,
            "tools": tool_versions("torch", "onnx", "numpy"),
            "upstream": w.upstream,
        },
    }
    return write_entry(registry_path, fields, {onnx_rel: model.SerializeToString()})
