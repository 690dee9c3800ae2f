"""Dataset throughput and tinyreg's fastest CPU path against the torch reference (eager and bf16 autocast).

All figures come from one run on this machine (random VGG-16 + the real alpha/beta; speed does not
depend on weight values, accuracy drops are measured on these weights):

* dataset frames/s at 960x540: ``score_dataset`` with the local engine (1 and 2 workers, fp32 and
  int8) and the Ray engine, wall time including worker start and model load; all engines must
  write identical records;
* per-pair latency at 960x540 of onnxruntime fp32, onnxruntime int8 (static QDQ, the gated
  sibling), the reference in torch eager fp32 and torch eager under bfloat16 autocast;
* 1 - PLCC of int8 and of bf16 autocast against fp32 on natural pairs.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

H, W = 540, 960
PAIRS, FRAMES = 4, 2
ACCURACY_PAIRS, ACCURACY_SIZE = 48, (128, 128)


def make_registry(workdir: Path) -> tuple[Path, dict[str, Any]]:
    """A registry with the real-size DISTS (random VGG-16, real alpha/beta) and its static int8 sibling."""
    import torch

    from registry.export.core import WeightSource, export_entry
    from registry.families.dists.reference import installed_alpha_beta
    from registry.families.vgg import VGG16_WIDTHS, random_vgg
    from registry.quant.quantize import quantize_entry
    from registry.store.document import init_registry

    ab = installed_alpha_beta()
    if ab is None:
        raise RuntimeError("dists-pytorch is not installed (make install brings it)")
    vgg = workdir / "vgg16_random.pth"
    if not vgg.exists():
        torch.save({k: torch.from_numpy(v) for k, v in random_vgg(VGG16_WIDTHS, 7).items()}, vgg)
    reg = init_registry(workdir / "dataset-registry")
    export_entry(reg, "dists", weights=[WeightSource("vgg16", str(vgg), hashlib.sha256(vgg.read_bytes()).hexdigest()),
                                        WeightSource("alpha_beta", str(ab))])
    entry = quantize_entry(reg, "dists_vgg16", mode="static")
    return reg, entry


def make_dataset(folder: Path) -> Path:
    from registry.media.images import fr_pairs
    from registry.media.y4m import write_y4m

    folder.mkdir(parents=True, exist_ok=True)
    pairs = list(fr_pairs(PAIRS * FRAMES, (H, W), seed=3))
    rows = ["ref,dist,pair"]
    for i in range(PAIRS):
        chunk = pairs[i * FRAMES : (i + 1) * FRAMES]
        write_y4m(folder / f"ref{i}.y4m", [p.ref for p in chunk])
        write_y4m(folder / f"dist{i}.y4m", [p.dist for p in chunk])
        rows.append(f"ref{i}.y4m,dist{i}.y4m,clip{i}")
    (folder / "pairs.csv").write_text("\n".join(rows) + "\n")
    return folder / "pairs.csv"


def engines(reg: Path, manifest: Path, workdir: Path, cores: int) -> dict[str, Any]:
    from registry.scoring.dataset import DatasetOptions, score_dataset

    runs = [("local", 1, False), ("local", 2, False), ("ray", 2, False), ("local", 1, True), ("local", 2, True)]
    rows, outputs = [], {}
    for engine, workers, int8 in runs:
        out = workdir / f"{engine}-{workers}-{'int8' if int8 else 'fp32'}.jsonl"
        t = time.perf_counter()
        try:
            rep = score_dataset("dists_vgg16", manifest, out,
                                DatasetOptions(engine=engine, workers=workers, int8=int8, cores=cores), registry=reg)
        except Exception as exc:  # e.g. Ray missing: report, keep the other figures
            rows.append({"engine": engine, "workers": workers, "int8": int8, "error": f"{type(exc).__name__}: {exc}"})
            continue
        wall = time.perf_counter() - t
        rows.append({"engine": engine, "workers": workers, "threads": rep.threads, "int8": int8, "frames": rep.frames,
                     "wall_s": wall, "frames_per_s": rep.frames / wall, "errors": len(rep.errors)})
        outputs.setdefault(int8, []).append(out.read_bytes())
    identical = all(len(set(v)) == 1 for v in outputs.values())
    return {"size": f"{W}x{H}", "pairs": PAIRS, "frames_per_pair": FRAMES, "cores": cores, "rows": rows,
            "identical_records": identical}


def latency(reg: Path, vgg: Path, threads: int) -> dict[str, Any]:
    from bench.__main__ import run_worker
    from registry.families.dists.reference import installed_alpha_beta

    ab = installed_alpha_beta()
    vsha = hashlib.sha256(vgg.read_bytes()).hexdigest()
    asha = hashlib.sha256(ab.read_bytes()).hexdigest() if ab else ""
    folder = reg.parent
    out: dict[str, Any] = {"size": f"{W}x{H}", "threads": threads}
    out["ort_fp32"] = run_worker(["ort", str(H), str(W), "5", str(folder / "dists_vgg16.onnx"), str(threads)])
    out["ort_int8"] = run_worker(["ort", str(H), str(W), "5", str(folder / "dists_vgg16.int8.onnx"), str(threads)])
    for kind in ("reference", "reference-bf16"):
        out[kind.replace("-", "_")] = run_worker([kind, str(H), str(W), "3", str(vgg), vsha, str(ab), asha, str(threads)])
    base = out["reference_bf16"].get("median_s")
    for k in ("ort_fp32", "ort_int8", "reference"):
        if base and "median_s" in out[k]:
            out[k]["speedup_vs_bf16_autocast"] = base / out[k]["median_s"]
    return out


def accuracy(reg: Path, vgg: Path) -> dict[str, Any]:
    """1 - PLCC against fp32 of the int8 sibling (onnxruntime) and of bf16 autocast (torch), same natural pairs."""
    import warnings

    import numpy as np
    import torch

    from registry.families.dists import load as load_dists_weights
    from registry.families.dists.reference import installed_alpha_beta, reference_model
    from registry.media.images import fr_pairs, imagenet_nchw
    from registry.runtime.loader import load

    ab = installed_alpha_beta()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ab is None:
            raise RuntimeError("dists-pytorch is not installed (make install brings it)")
        state, alpha, beta, _ = load_dists_weights({"vgg16": vgg.read_bytes(), "alpha_beta": ab.read_bytes()})
        s32, s8 = load("dists_vgg16", reg), load("dists_vgg16", reg, int8=True)
    model = reference_model(state, alpha, beta)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    scores: dict[str, list[float]] = {"ort_fp32": [], "ort_int8": [], "torch_fp32": [], "torch_bf16": []}
    for p in fr_pairs(ACCURACY_PAIRS, ACCURACY_SIZE, seed=11):
        feeds = {"ref": imagenet_nchw(p.ref, mean, std), "dist": imagenet_nchw(p.dist, mean, std)}
        scores["ort_fp32"].append(float(s32.run(None, feeds)[0]))
        scores["ort_int8"].append(float(s8.run(None, feeds)[0]))
        x = torch.from_numpy(np.ascontiguousarray(p.ref.transpose(2, 0, 1)[None]))
        y = torch.from_numpy(np.ascontiguousarray(p.dist.transpose(2, 0, 1)[None]))
        with torch.no_grad():
            scores["torch_fp32"].append(float(model(x, y)))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                scores["torch_bf16"].append(float(model(x, y)))

    def drop(a: str, b: str) -> float:
        return float(1.0 - np.corrcoef(scores[a], scores[b])[0, 1])

    return {"pairs": ACCURACY_PAIRS, "size": f"{ACCURACY_SIZE[1]}x{ACCURACY_SIZE[0]}",
            "int8_drop": drop("ort_int8", "ort_fp32"), "bf16_drop": drop("torch_bf16", "torch_fp32"),
            "ort_vs_torch_fp32_max_abs": float(np.max(np.abs(np.subtract(scores["ort_fp32"], scores["torch_fp32"]))))}


def bench_dataset(workdir: Path, threads: int = 0) -> dict[str, Any]:
    cores = threads or os.cpu_count() or 1
    reg, entry = make_registry(workdir)
    gate = entry["quant"]["gate"]
    res: dict[str, Any] = {"int8_gate": {"mode": entry["quant_mode"], "drop": gate["drop"], "drop_ci95": gate["drop_ci95"],
                                         "passed": gate["passed"]}}
    manifest = make_dataset(workdir / "dataset")
    res["engines"] = engines(reg, manifest, workdir, cores)
    res["latency"] = latency(reg, workdir / "vgg16_random.pth", cores)
    res["accuracy"] = accuracy(reg, workdir / "vgg16_random.pth")
    lat = res["latency"]
    fastest = "ort_int8" if gate["passed"] else "ort_fp32"
    res["fastest"] = {"path": fastest, "speedup_vs_bf16_autocast": lat[fastest].get("speedup_vs_bf16_autocast"),
                      "drop": res["accuracy"]["int8_drop"] if fastest == "ort_int8" else 0.0}
    return res
