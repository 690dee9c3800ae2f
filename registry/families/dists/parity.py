"""DISTS parity: the registry's ONNX against ``DISTS_pytorch.DISTS`` on the same weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.errors import UsageError
from registry.families.dists import ALPHA_BETA, VGG16
from registry.parity import ReferenceScorer


def reference_for_entry(
    entry: dict[str, Any], *, vgg16: str | None = None, alpha_beta: str | None = None, cache_dir: Path | None = None
) -> tuple[ReferenceScorer, str]:
    """A scorer running the reference forward on the very weights the entry was exported from."""
    if entry.get("smoke") is True:
        raise UsageError(f"'{entry['id']}' is a smoke placeholder; export real weights first (tinyreg export dists)")
    ups = (entry.get("provenance") or {}).get("upstream") or []
    if len(ups) != 2:
        raise UsageError(f"'{entry['id']}' records no upstream weights to compare against")
    v_up, ab_up = ups

    def source(given: str | None, up: dict[str, Any], default: Any, option: str) -> str:
        if given:
            return given
        if up.get("url"):
            return str(up["url"])
        if up["sha256"] == default.sha256:
            return str(default.url)
        raise UsageError(f"'{entry['id']}' was exported from a local {default.filename}; pass it again with {option} PATH")

    from registry.families.dists.export import load_weights
    from registry.families.dists.reference import reference_model, reference_score

    w = load_weights(source(vgg16, v_up, VGG16, "--vgg16"), v_up["sha256"],
                     source(alpha_beta, ab_up, ALPHA_BETA, "--alpha-beta"), ab_up["sha256"], cache_dir=cache_dir)
    model = reference_model(w.state, w.alpha, w.beta)

    def score(ref01: Any, dist01: Any) -> float:
        return reference_score(model, ref01, dist01)

    from importlib import metadata

    try:
        ver = metadata.version("dists-pytorch")
    except metadata.PackageNotFoundError:
        ver = "?"
    return score, f"DISTS_pytorch.DISTS (dists-pytorch {ver})"
