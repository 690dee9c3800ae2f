"""Peak RSS of scoring one pair with the full-size DISTS and LPIPS graphs, against the families' estimates.

``python -m bench.memory`` measures each family at 128x128, 256x256, 540x960 and 1080x1920 (one
process per measurement, tinyreg's session options, random VGG-16 weights: memory does not depend
on the weight values), fits ``base + per_pixel * H * W`` through the two largest sizes, and checks
that ``Family.score_memory`` bounds every measurement. Those constants come from this run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SIZES = [(128, 128), (256, 256), (540, 960), (1080, 1920)]


def build_models(workdir: Path) -> dict[str, Path]:
    import numpy as np

    from registry.families.dists.graph import build_dists, normalise_weights
    from registry.families.lpips import build_lpips
    from registry.families.vgg import VGG16_WIDTHS, random_vgg

    state = random_vgg(VGG16_WIDTHS, 7)
    rng = np.random.default_rng(1)
    n = 3 + sum(VGG16_WIDTHS)
    a, b = normalise_weights(np.abs(rng.normal(0.1, 0.01, n)), np.abs(rng.normal(0.1, 0.01, n)))
    lins = [np.abs(rng.normal(0.1, 0.01, w)).astype(np.float32) for w in VGG16_WIDTHS]
    out = {"dists": workdir / "dists_full.onnx", "lpips": workdir / "lpips_full.onnx"}
    out["dists"].write_bytes(build_dists(state, a, b).SerializeToString())
    out["lpips"].write_bytes(build_lpips(state, lins).SerializeToString())
    return out


def bench_memory(workdir: Path, threads: int = 0) -> dict[str, Any]:
    from bench.__main__ import run_worker
    from registry.families import get_family

    res: dict[str, Any] = {}
    for family, model in build_models(workdir).items():
        est = get_family(family).score_memory
        rows = []
        for h, w in SIZES:
            r = run_worker(["ort", str(h), str(w), "1", str(model), str(threads)])
            mib = r.get("peak_rss_mib")
            row: dict[str, Any] = {"size": f"{w}x{h}", "pixels": h * w, "peak_rss_mib": mib}
            if est is not None and mib:
                row["estimate_mib"] = est.estimate(h, w) / (1 << 20)
                row["bounded"] = row["estimate_mib"] >= mib
            rows.append(row)
        fit: dict[str, float] = {}
        big = [r for r in rows if r.get("peak_rss_mib")][-2:]
        if len(big) == 2:
            per_px = (big[1]["peak_rss_mib"] - big[0]["peak_rss_mib"]) * (1 << 20) / (big[1]["pixels"] - big[0]["pixels"])
            fit = {"per_pixel_bytes": per_px, "base_mib": big[0]["peak_rss_mib"] - per_px * big[0]["pixels"] / (1 << 20)}
        res[family] = {"rows": rows, "fit": fit,
                       "model": {"base_mib": est.base / (1 << 20), "per_pixel": est.per_pixel} if est else None}
    return res


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(bench_memory(Path(d)), indent=2, sort_keys=True))
