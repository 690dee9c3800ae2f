"""``tinyreg export lpips``: VGG-16 + LPIPS v0.1 linear layers -> ONNX graph -> pinned entry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry.allowlist import check_model, errors_only, load_allowlist
from registry.errors import CheckFailed, InputError, UsageError
from registry.families._torchio import torch_load
from registry.families.lpips import FAMILY, LIN, build_lpips
from registry.families.vgg import VGG16, load_vgg16, stage_widths
from registry.fetch import fetch_pinned, is_url
from registry.onnx_inspect import inspect_model
from registry.store import Entry

EXPORTER = "tinyreg.families.lpips.export/1"


@dataclass(frozen=True)
class Weights:
    state: dict[str, np.ndarray]
    lins: list[np.ndarray]  # one [C] vector per stage
    lin_bytes: bytes
    upstream: list[dict[str, Any]]


def load_lins(data: bytes, widths: tuple[int, ...]) -> list[np.ndarray]:
    sd = torch_load(data, "LPIPS linear layers")
    want = {f"lin{k}.model.1.weight" for k in range(len(widths))}
    if not isinstance(sd, dict) or set(sd) != want:
        keys = sorted(sd) if isinstance(sd, dict) else type(sd).__name__
        raise InputError(f"LPIPS linear layers: expected exactly {sorted(want)} (got {keys})")
    out = []
    for k, w in enumerate(widths):
        t = sd[f"lin{k}.model.1.weight"]
        if tuple(t.shape) != (1, w, 1, 1):
            raise InputError(f"LPIPS lin{k}: shape {tuple(t.shape)}, backbone needs (1, {w}, 1, 1)")
        out.append(t.float().numpy().reshape(-1).copy())
    return out


def load_weights(vgg16: str, vgg16_sha256: str, lin: str, lin_sha256: str, *, cache_dir: Path | None = None,
                 progress: bool = True) -> Weights:
    state = load_vgg16(fetch_pinned(vgg16, vgg16_sha256, VGG16.filename, cache_dir=cache_dir, progress=progress))
    lin_bytes = fetch_pinned(lin, lin_sha256, LIN.filename, cache_dir=cache_dir, progress=progress)
    lins = load_lins(lin_bytes, stage_widths(state))

    def up(u: Any, source: str, sha: str) -> dict[str, Any]:
        official = sha.lower() == u.sha256
        rec = {"name": u.name if official else f"{u.name} (user-pinned, not the upstream file)",
               "sha256": sha.lower(), "license": u.license, "official": official}
        if is_url(source):
            rec["url"] = source
        elif official:
            rec["url"] = u.url
        return rec

    return Weights(state, lins, lin_bytes, [up(VGG16, vgg16, vgg16_sha256), up(LIN, lin, lin_sha256)])


def export(
    registry_path: Path,
    *,
    vgg16: str = VGG16.url,
    vgg16_sha256: str = VGG16.sha256,
    lin: str = LIN.url,
    lin_sha256: str = LIN.sha256,
    opset: int = 17,
    entry_id: str | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Entry:
    from registry._internal.onnxbuild import SUPPORTED_OPSETS
    from registry.entries import write_entry
    from registry.smoke import tool_versions

    if opset not in SUPPORTED_OPSETS:
        raise UsageError(f"opset {opset} is not supported by the LPIPS exporter (supported: {', '.join(map(str, SUPPORTED_OPSETS))})")
    w = load_weights(vgg16, vgg16_sha256, lin, lin_sha256, cache_dir=cache_dir, progress=progress)
    meta = {"tinyreg.family": "lpips", "tinyreg.smoke": "false"}
    for i, u in enumerate(w.upstream):
        meta[f"tinyreg.upstream.{i}.sha256"] = u["sha256"]
    model = build_lpips(w.state, w.lins, opset=opset, doc="LPIPS v0.1 (Zhang et al., CVPR 2018), VGG-16 backbone.", metadata=meta)
    info = inspect_model(model)
    if info.opset != opset:
        raise CheckFailed(f"exporter produced opset {info.opset}, asked for {opset}")
    if info.op_set() != set(FAMILY.ops):
        raise CheckFailed("exported op set differs from the family's declared op set")
    bad = errors_only(check_model(info, load_allowlist(), "fp32"))
    if bad:
        raise CheckFailed(f"exported graph breaks the op allowlist: {bad[0]}")
    eid = entry_id or FAMILY.default_id
    onnx_rel = f"{eid}.onnx"
    official = all(u["official"] for u in w.upstream)
    fields: dict[str, Any] = {
        "id": eid, "kind": FAMILY.kind, "family": FAMILY.name, "onnx": onnx_rel, "smoke": False, "placeholder_for": None,
        "opset": opset,
        "description": f"{FAMILY.title}: {FAMILY.score_convention}."
        + ("" if official else " Built from user-pinned weights, not the upstream files."),
        "notes": f"{FAMILY.description} Reference: {FAMILY.reference}",
        "license": FAMILY.license, "license_url": FAMILY.license_url, "license_notes": FAMILY.license_notes,
        "quant_accuracy_budget_plcc": FAMILY.quant_accuracy_budget_plcc,
        "io": info.io_json(), "input_conventions": FAMILY.input_conventions,
        "provenance": {"exporter": EXPORTER, "tools": tool_versions("torch", "onnx", "numpy"), "upstream": w.upstream},
    }
    return write_entry(registry_path, fields, {onnx_rel: model.SerializeToString()})
