"""int8 and fp16 against fp32 DISTS at 960x540 (same run, same machine) and their gates.

``python -m bench quant`` runs this piece alone (it writes the random VGG-16 the DISTS benchmark uses).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def bench_quant(workdir: Path, threads: int = 0) -> dict[str, Any]:
    from bench.__main__ import run_worker
    from registry.export.core import WeightSource, export_entry
    from registry.families.dists.reference import installed_alpha_beta
    from registry.quant.quantize import quantize_entry
    from registry.store.document import init_registry

    vgg = workdir / "vgg16_random.pth"
    ab = installed_alpha_beta()
    if not vgg.exists() or ab is None:
        return {"error": "needs the DISTS benchmark's backbone and dists-pytorch"}
    reg = init_registry(workdir / "quant-registry")
    export_entry(reg, "dists", weights=[WeightSource("vgg16", str(vgg), hashlib.sha256(vgg.read_bytes()).hexdigest()),
                                        WeightSource("alpha_beta", str(ab))])
    out: dict[str, Any] = {"size": "960x540"}
    for mode in ("static", "dynamic"):
        e = quantize_entry(reg, "dists_vgg16", mode=mode)
        g = e["quant"]["gate"]
        t8 = run_worker(["ort", "540", "960", "5", str(reg.parent / "dists_vgg16.int8.onnx"), str(threads)])
        out[mode] = {"drop": g["drop"], "drop_ci95": g["drop_ci95"], "passed": g["passed"], "int8": t8}
    e = quantize_entry(reg, "dists_vgg16", mode="fp16")
    g = e["fp16"]["gate"]
    t16 = run_worker(["ort", "540", "960", "5", str(reg.parent / "dists_vgg16.fp16.onnx"), str(threads)])
    out["fp16"] = {"drop": g["drop"], "drop_ci95": g["drop_ci95"], "max_abs_diff": g["max_abs_diff"],
                   "max_abs_budget": g["max_abs_budget"], "cpu_max_abs_diff": g["cpu_run"]["max_abs_diff"],
                   "passed": g["passed"], "latency": t16}
    t32 = run_worker(["ort", "540", "960", "5", str(reg.parent / "dists_vgg16.onnx"), str(threads)])
    out["fp32"] = t32
    if "median_s" in t16 and "median_s" in t32:
        out["fp16"]["speedup"] = t32["median_s"] / t16["median_s"]
    for mode in ("static", "dynamic"):
        if "median_s" in out[mode]["int8"] and "median_s" in t32:
            out[mode]["speedup"] = t32["median_s"] / out[mode]["int8"]["median_s"]
    out["speedup"] = out["static"].get("speedup")
    out["drop"] = out["static"]["drop"]
    return out


def write_backbone(workdir: Path) -> None:
    """The seeded random VGG-16 (torch format) the DISTS benchmark exports from."""
    import torch

    from registry.families.vgg import VGG16_WIDTHS, random_vgg

    torch.save({k: torch.from_numpy(v) for k, v in random_vgg(VGG16_WIDTHS, 7).items()}, workdir / "vgg16_random.pth")
