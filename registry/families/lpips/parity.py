"""LPIPS parity: the registry's ONNX against ``lpips.LPIPS`` on the same weights."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from registry.export.parity import ReferenceScorer, reference_name, upstream_sources
from registry.families.lpips import LIN
from registry.families.vgg import VGG16


def reference_for_entry(
    entry: dict[str, Any], *, vgg16: str | None = None, lin: str | None = None, cache_dir: Path | None = None
) -> tuple[ReferenceScorer, str]:
    (v_src, v_sha), (l_src, l_sha) = upstream_sources(entry, [vgg16, lin], [VGG16, LIN], ["vgg16", "lin"])
    from registry.families.lpips.export import load_weights
    from registry.families.lpips.reference import reference_model, reference_score

    w = load_weights(v_src, v_sha, l_src, l_sha, cache_dir=cache_dir)
    model = reference_model(w.state, w.lin_bytes)
    return functools.partial(reference_score, model), reference_name("lpips.LPIPS(net='vgg', version='0.1')", "lpips")
