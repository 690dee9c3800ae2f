"""DISTS parity: the registry's ONNX against ``DISTS_pytorch.DISTS`` on the same weights."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from registry.export.parity import ReferenceScorer, reference_name, upstream_sources
from registry.families.dists import ALPHA_BETA
from registry.families.vgg import VGG16


def reference_for_entry(
    entry: dict[str, Any], *, vgg16: str | None = None, alpha_beta: str | None = None, cache_dir: Path | None = None
) -> tuple[ReferenceScorer, str]:
    """A scorer running the reference forward on the very weights the entry was exported from."""
    (v_src, v_sha), (ab_src, ab_sha) = upstream_sources(entry, [vgg16, alpha_beta], [VGG16, ALPHA_BETA],
                                                        ["vgg16", "alpha_beta"])
    from registry.families.dists.export import load_weights
    from registry.families.dists.reference import reference_model, reference_score

    w = load_weights(v_src, v_sha, ab_src, ab_sha, cache_dir=cache_dir)
    model = reference_model(w.state, w.alpha, w.beta)
    return functools.partial(reference_score, model), reference_name("DISTS_pytorch.DISTS", "dists-pytorch")
