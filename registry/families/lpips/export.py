"""``tinyreg export lpips``: VGG-16 + LPIPS v0.1 linear layers -> ONNX graph -> pinned entry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import InputError
from registry.export.core import check_opset, upstream_metadata, upstream_record, write_export
from registry.export.fetch import fetch_pinned
from registry.families._torchio import torch_load
from registry.families.lpips import FAMILY, LIN, build_lpips
from registry.families.vgg import VGG16, load_vgg16, stage_widths
from registry.store.document import Entry

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
    vdata = fetch_pinned(vgg16, vgg16_sha256, VGG16.filename, size=VGG16.size_for(vgg16_sha256), cache_dir=cache_dir, progress=progress)
    state = load_vgg16(vdata)
    lin_bytes = fetch_pinned(lin, lin_sha256, LIN.filename, size=LIN.size_for(lin_sha256), cache_dir=cache_dir, progress=progress)
    lins = load_lins(lin_bytes, stage_widths(state))

    return Weights(state, lins, lin_bytes, [upstream_record(VGG16, vgg16, vgg16_sha256), upstream_record(LIN, lin, lin_sha256)])


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
    check_opset(opset, "LPIPS")
    w = load_weights(vgg16, vgg16_sha256, lin, lin_sha256, cache_dir=cache_dir, progress=progress)
    model = build_lpips(w.state, w.lins, opset=opset, doc="LPIPS v0.1 (Zhang et al., CVPR 2018), VGG-16 backbone.",
                        metadata=upstream_metadata("lpips", w.upstream))
    return write_export(registry_path, FAMILY, model, w.upstream, opset=opset, entry_id=entry_id, exporter=EXPORTER)
