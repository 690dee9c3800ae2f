"""``tinyreg export dists``: real weights -> ONNX graph -> pinned registry entry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry.export.core import check_opset, upstream_metadata, upstream_record, write_export
from registry.export.fetch import fetch_pinned
from registry.families.dists import ALPHA_BETA, FAMILY
from registry.families.dists.graph import build_dists, normalise_weights
from registry.families.dists.weights import load_alpha_beta
from registry.families.vgg import VGG16, load_vgg16
from registry.store.document import Entry

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
    vdata = fetch_pinned(vgg16, vgg16_sha256, VGG16.filename, size=VGG16.size_for(vgg16_sha256), cache_dir=cache_dir, progress=progress)
    state = load_vgg16(vdata)
    from registry.families.vgg import stage_widths

    n = 3 + sum(stage_widths(state))
    adata = fetch_pinned(alpha_beta, alpha_beta_sha256, ALPHA_BETA.filename,
                         size=ALPHA_BETA.size_for(alpha_beta_sha256), cache_dir=cache_dir, progress=progress)
    alpha, beta, w_sum = load_alpha_beta(adata, n)

    return Weights(state, alpha, beta, w_sum,
                   [upstream_record(VGG16, vgg16, vgg16_sha256), upstream_record(ALPHA_BETA, alpha_beta, alpha_beta_sha256)])


def build_model(w: Weights, opset: int) -> Any:
    a, b = normalise_weights(w.alpha, w.beta, w.w_sum)
    return build_dists(w.state, a, b, opset=opset, doc="DISTS (Ding et al., TPAMI 2020), VGG-16 backbone. Output: 1 - similarity.",
                       metadata=upstream_metadata("dists", w.upstream))


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
    check_opset(opset, "DISTS")
    w = load_weights(vgg16, vgg16_sha256, alpha_beta, alpha_beta_sha256, cache_dir=cache_dir, progress=progress)
    return write_export(registry_path, FAMILY, build_model(w, opset), w.upstream, opset=opset, entry_id=entry_id,
                        exporter=EXPORTER)
