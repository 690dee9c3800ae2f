"""Run every benchmark, print a table and write bench-results/bench.json.

Figures (all measured in this run, on this machine):
* ``tinyreg --help`` and ``tinyreg verify`` wall time on the shipped registry;
* streaming sha256 throughput against ``sha256sum`` on the same file;
* DISTS per-pair latency at 256x256, 960x540, 1920x1080: onnxruntime fp32
  against the reference PyTorch forward on the same weights, their ratio,
  achieved GFLOP/s against a GEMM rate measured here, and peak RSS;
* int8 (static, dynamic) and fp16 against fp32 at 960x540, with their gates (bench/quant.py);
* peak RSS of full-size DISTS and LPIPS at four sizes against the families'
  memory estimates (``bench/memory.py``), which scoring uses to refuse a size.
* dataset scoring (bench/dataset.py): frames/s at 960x540 for the local engine (1 and 2 workers)
  and Ray, and the fastest CPU path against torch eager and torch bf16 autocast;
* the int8 kernels (bench/int8_kernels.py): ISA flags and one conv's GOP/s, fp32 against int8
  QDQ/QOperator, u8/s8 and s8/s8;
* OCI push and pull of the real-size DISTS entry against ``skopeo copy`` and ``curl`` (bench/oci.py).

``python -m bench dataset`` runs only the dataset part (written to bench-results/dataset.json);
``python -m bench quant`` only the fp32 / int8 / fp16 part (bench-results/quant.json);
``python -m bench oci`` only the OCI push/pull measurement (bench/oci.py; bench-results/oci.json).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-results"
SIZES = [(256, 256, 8), (540, 960, 5), (1080, 1920, 3)]  # H, W, repetitions


def _wall(cmd: list[str], reps: int = 5) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run(cmd, check=False, capture_output=True, cwd=REPO)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_cli() -> dict[str, Any]:
    exe = str(Path(sys.executable).parent / "tinyreg")
    return {
        "help_s": _wall([exe, "--help"]),
        "verify_s": _wall([exe, "verify", "--registry", str(REPO / "model" / "tiny" / "registry.json")]),
    }


def bench_hash(size_mib: int = 512) -> dict[str, Any]:
    from registry._internal.hashing import sha256_file

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "blob"
        with open(p, "wb") as fh:
            block = os.urandom(1 << 20)
            for _ in range(size_mib):
                fh.write(block)
        sha256_file(p)  # page cache warm for both
        t = time.perf_counter()
        ours = sha256_file(p)
        t_ours = time.perf_counter() - t
        t_sys = None
        if shutil.which("sha256sum"):
            t = time.perf_counter()
            out = subprocess.run(["sha256sum", str(p)], capture_output=True, text=True, check=True).stdout.split()[0]
            t_sys = time.perf_counter() - t
            assert out == ours.sha256
    return {"file_mib": size_mib, "tinyreg_mib_s": size_mib / t_ours,
            "sha256sum_mib_s": size_mib / t_sys if t_sys else None,
            "ratio_vs_sha256sum": (t_sys / t_ours) if t_sys else None}


def gemm_rate(threads: int) -> dict[str, float]:
    """Best fp32 GEMM rate (GFLOP/s) of numpy, torch and onnxruntime (MLAS) on 3072^3, in this run."""
    import numpy as np

    n, reps = 3072, 5
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.T.copy()
    rates: dict[str, float] = {}

    def best(fn: Any) -> float:
        fn()
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return 2 * n**3 / min(times) / 1e9

    rates["numpy"] = best(lambda: a @ b)
    try:
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        rates["torch"] = best(lambda: ta @ tb)
    except ImportError:
        pass
    try:  # onnxruntime's own MatMul (MLAS), the GEMM its convolutions run on
        import onnxruntime as ort
        from onnx import TensorProto, helper

        g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "g",
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        rates["onnxruntime"] = best(lambda: sess.run(None, {"a": a, "b": b}))
    except ImportError:
        pass
    rates["best"] = max(rates.values())
    return rates


def dists_flops(h: int, w: int) -> float:
    """Conv FLOPs of one DISTS pair (two VGG-16 passes up to relu5_3, L2 pooling included)."""
    widths = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
              (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    stage_of = [0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    total = 0.0
    for (ci, co), s in zip(widths, stage_of, strict=True):
        px = (-(-h // 2**s)) * (-(-w // 2**s))
        total += 2 * ci * co * 9 * px
    for s, c in enumerate([64, 128, 256, 512]):  # depthwise L2 pooling
        px = (-(-h // 2 ** (s + 1))) * (-(-w // 2 ** (s + 1)))
        total += 2 * c * 9 * px
    return 2 * total


def run_worker(args: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "bench._worker", *args], capture_output=True, text=True, env=env, cwd=REPO)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    result: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    return result


def bench_dists(workdir: Path, threads: int) -> dict[str, Any]:
    import hashlib

    import torch

    from registry.families import get_family
    from registry.families.dists.reference import installed_alpha_beta
    from registry.families.vgg import VGG16_WIDTHS, random_vgg

    ab = installed_alpha_beta()
    if ab is None:
        return {"error": "dists-pytorch is not installed (make install brings it)"}
    vgg = workdir / "vgg16_random.pth"
    torch.save({k: torch.from_numpy(v) for k, v in random_vgg(VGG16_WIDTHS, 7).items()}, vgg)
    vsha = hashlib.sha256(vgg.read_bytes()).hexdigest()
    asha = hashlib.sha256(ab.read_bytes()).hexdigest()
    model = workdir / "dists.onnx"
    weights = {"vgg16": vgg.read_bytes(), "alpha_beta": ab.read_bytes()}
    model.write_bytes(get_family("dists").build(weights, 17).SerializeToString())
    rows = []
    for h, wd, reps in SIZES:
        o = run_worker(["ort", str(h), str(wd), str(reps), str(model), str(threads)])
        r = run_worker(["reference", str(h), str(wd), str(max(2, reps // 2)), str(vgg), vsha, str(ab), asha, str(threads)])
        flops = dists_flops(h, wd)
        row: dict[str, Any] = {"size": f"{wd}x{h}", "gflop_per_pair": flops / 1e9, "ort": o, "reference": r}
        if "median_s" in o and "median_s" in r:
            row["speedup_vs_reference"] = r["median_s"] / o["median_s"]
        if "median_s" in o:
            row["ort_gflop_s"] = flops / o["median_s"] / 1e9
        rows.append(row)
    return {"threads": threads, "rows": rows}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    threads = os.cpu_count() or 1
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpus": threads, "python": platform.python_version()}
    if sys.argv[1:] == ["quant"]:  # int8 and fp16 against fp32 at 960x540, alone
        from bench.quant import bench_quant, write_backbone

        with tempfile.TemporaryDirectory() as d:
            write_backbone(Path(d))
            part = {"machine": machine, "quant": bench_quant(Path(d), threads)}
        (OUT / "quant.json").write_text(json.dumps(part, indent=2, sort_keys=True) + "\n")
        print_quant(part["quant"])
        print(f"\nwrote {OUT / 'quant.json'}")
        return
    if sys.argv[1:] == ["oci"]:
        from bench.oci import main as oci_main

        oci_main()
        return
    if sys.argv[1:] == ["dataset"]:
        from bench.dataset import bench_dataset

        with tempfile.TemporaryDirectory() as d:
            part = {"machine": machine, "dataset": bench_dataset(Path(d), threads)}
        part["targets"] = evaluate_dataset(part["dataset"])
        (OUT / "dataset.json").write_text(json.dumps(part, indent=2, sort_keys=True) + "\n")
        print_dataset(part["dataset"], part["targets"])
        print(f"\nwrote {OUT / 'dataset.json'}")
        return
    results: dict[str, Any] = {"machine": machine}
    results["cli"] = bench_cli()
    results["hash"] = bench_hash()
    results["gemm_gflop_s"] = gemm_rate(threads)
    with tempfile.TemporaryDirectory() as d:
        results["dists"] = bench_dists(Path(d), threads)
        from bench.memory import bench_memory

        results["memory"] = bench_memory(Path(d), threads)
        try:
            from bench.quant import bench_quant

            results["quant"] = bench_quant(Path(d), threads)
        except ImportError:
            pass
        from bench.dataset import bench_dataset

        results["dataset"] = bench_dataset(Path(d), threads)
        from bench.oci import bench_oci

        results["oci"] = bench_oci(Path(d) / "oci")
    from bench.int8_kernels import conv_rates, cpu_flags

    results["int8_kernels"] = {"cpu": cpu_flags(), "conv": conv_rates(threads)}  # python -m bench.int8_kernels: the DISTS profile too
    targets = evaluate(results)
    results["targets"] = targets
    (OUT / "bench.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print_table(results)
    print_dataset(results["dataset"], [])
    from bench.oci import print_oci

    print_oci(results["oci"])
    print(f"\nwrote {OUT / 'bench.json'}")


def evaluate_dataset(d: dict[str, Any]) -> list[dict[str, Any]]:
    t: list[dict[str, Any]] = []
    f = d.get("fastest") or {}
    sp, drop = f.get("speedup_vs_bf16_autocast"), f.get("drop")
    t.append({"target": f"fastest CPU path ({f.get('path')}) vs torch bf16 autocast @960x540",
              "value": f"{sp:.2f}x" if sp else "n/a", "goal": ">= 2x", "met": (sp >= 2) if sp else None})
    t.append({"target": "fastest path drop (1 - PLCC)", "value": f"{drop:.5f}" if drop is not None else "n/a",
              "goal": "<= 0.005", "met": (drop <= 0.005) if drop is not None else None})
    ident = d.get("engines", {}).get("identical_records")
    t.append({"target": "engines write identical records", "value": str(ident), "goal": "True", "met": ident})
    return t


def print_dataset(d: dict[str, Any], targets: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=140)
    e = d["engines"]
    t = Table(title=f"dataset scoring, {e['pairs']} pairs x {e['frames_per_pair']} frames at {e['size']} ({e['cores']} cores)")
    for c in ("engine", "workers x threads", "model", "frames/s", "wall s"):
        t.add_column(c)
    for r in e["rows"]:
        if "error" in r:
            t.add_row(r["engine"], str(r["workers"]), "int8" if r["int8"] else "fp32", r["error"], "")
        else:
            t.add_row(r["engine"], f"{r['workers']} x {r['threads']}", "int8" if r["int8"] else "fp32",
                      f"{r['frames_per_s']:.3f}", f"{r['wall_s']:.1f}")
    con.print(t)
    lat, acc = d["latency"], d["accuracy"]
    lt = Table(title=f"DISTS per pair at {lat['size']}: tinyreg against the torch reference (1 - PLCC on {acc['pairs']} "
                     f"natural pairs at {acc['size']})")
    for c in ("path", "latency s", "vs torch bf16 autocast", "1 - PLCC vs fp32"):
        lt.add_column(c)
    drops = {"ort_int8": f"{acc['int8_drop']:.2g}", "reference_bf16": f"{acc['bf16_drop']:.2g}"}
    for k, label in (("ort_int8", "onnxruntime int8 (static QDQ, gated)"), ("ort_fp32", "onnxruntime fp32"),
                     ("reference", "torch eager fp32"), ("reference_bf16", "torch eager bf16 autocast")):
        r = lat[k]
        vs = f"{r['speedup_vs_bf16_autocast']:.2f}x" if "speedup_vs_bf16_autocast" in r else "-"
        lt.add_row(label, f"{r.get('median_s', float('nan')):.3f}", "1.00x" if k == "reference_bf16" else vs,
                   drops.get(k, "0 (reference)" if k.startswith("ref") else "-"))
    con.print(lt)
    g = d["int8_gate"]
    con.print(f"int8 gate: {g['mode']}, drop {g['drop']:.5f} (95% CI upper {g['drop_ci95'][1]:.5f}), "
              f"{'passed' if g['passed'] else 'FAILED'}")
    if targets:
        tt = Table(title="targets")
        for c in ("target", "value", "goal", "met"):
            tt.add_column(c)
        for x in targets:
            tt.add_row(x["target"], str(x["value"]), x["goal"], {True: "yes", False: "NO", None: "n/a"}[x["met"]])
        con.print(tt)


def evaluate(res: dict[str, Any]) -> list[dict[str, Any]]:
    t: list[dict[str, Any]] = []

    def add(name: str, value: Any, goal: str, ok: bool | None) -> None:
        t.append({"target": name, "value": value, "goal": goal, "met": ok})

    add("tinyreg --help", f"{res['cli']['help_s']:.3f} s", "< 1 s", res["cli"]["help_s"] < 1)
    add("tinyreg verify (shipped)", f"{res['cli']['verify_s']:.3f} s", "< 1 s", res["cli"]["verify_s"] < 1)
    r = res["hash"].get("ratio_vs_sha256sum")
    add("sha256 vs sha256sum", f"{r:.2f}x" if r else "n/a", ">= 0.8x", (r >= 0.8) if r else None)
    gemm = res["gemm_gflop_s"]["best"]
    for row in res["dists"].get("rows", []):
        if row["size"] == "960x540":
            sp = row.get("speedup_vs_reference")
            add("ORT vs reference @960x540", f"{sp:.2f}x" if sp else "n/a", ">= 1.5x", (sp >= 1.5) if sp else None)
            g = row.get("ort_gflop_s")
            add("ORT GFLOP/s vs GEMM @960x540", f"{g:.0f}/{gemm:.0f} = {g / gemm:.0%}" if g else "n/a", ">= 75%",
                (g / gemm >= 0.75) if g else None)
        if row["size"] == "1920x1080":
            mem = row["ort"].get("peak_rss_mib")
            add("ORT peak RSS @1920x1080", f"{mem:.0f} MiB" if mem else "n/a", "<= 8192 MiB", (mem <= 8192) if mem else None)
    for family, m in (res.get("memory") or {}).items():
        bounded = [r["bounded"] for r in m["rows"] if "bounded" in r]
        add(f"{family} memory estimate bounds peak RSS", f"{sum(bounded)}/{len(bounded)} sizes", "all",
            all(bounded) if bounded else None)
    if res.get("dataset"):
        t.extend(evaluate_dataset(res["dataset"]))
    o = res.get("oci") or {}
    for op in ("push", "pull"):
        r = o.get(f"{op}_vs_skopeo")
        add(f"tinyreg {op} vs skopeo copy (real-size DISTS)", f"{r:.2f}x" if r else "n/a", ">= 0.5x", (r >= 0.5) if r else None)
    q = res.get("quant")
    if q and "speedup" in q:
        add("int8 vs fp32 @960x540", f"{q['speedup']:.2f}x", ">= 1.5x", q["speedup"] >= 1.5)
        add("int8 drop (1 - PLCC)", f"{q['drop']:.5f}", "<= 0.005", q["drop"] <= 0.005)
    return t


def print_quant(q: dict[str, Any], con: Any = None) -> None:
    """fp32, int8 (static, dynamic) and fp16 DISTS at 960x540: latency, speed-up and gate."""
    from rich.console import Console
    from rich.table import Table

    con = con or Console(width=140)
    if "fp32" not in q:
        if q:
            con.print(f"quant: {q.get('error', q)}")
        return
    qt = Table(title="DISTS fp32, int8 and fp16 @960x540 (random VGG-16 + real alpha/beta), onnxruntime CPU")
    for c in ("precision", "latency s", "speedup vs fp32", "drop (1 - PLCC)", "95% CI upper", "max |d| (limit)", "gate"):
        qt.add_column(c)
    qt.add_row("fp32", f"{q['fp32'].get('median_s', float('nan')):.3f}", "1.00x", "-", "-", "-", "-")
    for mode in ("static", "dynamic"):
        m = q[mode]
        qt.add_row(f"int8 {mode}", f"{m['int8'].get('median_s', float('nan')):.3f}", f"{m.get('speedup', float('nan')):.2f}x",
                   f"{m['drop']:.5f}", f"{m['drop_ci95'][1]:.5f}", "-", "pass" if m["passed"] else "FAIL")
    if "fp16" in q:
        m = q["fp16"]
        qt.add_row("fp16", f"{m['latency'].get('median_s', float('nan')):.3f}", f"{m.get('speedup', float('nan')):.2f}x",
                   f"{m['drop']:.2e}", f"{m['drop_ci95'][1]:.2e}", f"{m['max_abs_diff']:.2e} ({m['max_abs_budget']:g})",
                   "pass" if m["passed"] else "FAIL")
    con.print(qt)


def print_table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=140)
    t = Table(title=f"DISTS per pair ({res['dists'].get('threads')} threads; GEMM {res['gemm_gflop_s']['best']:.0f} GFLOP/s)")
    for c in ("size", "GFLOP", "ORT fp32 s", "reference s", "speedup", "ORT GFLOP/s", "% of GEMM", "ORT peak MiB", "ref peak MiB"):
        t.add_column(c)
    gemm = res["gemm_gflop_s"]["best"]
    for row in res["dists"].get("rows", []):
        o, r = row["ort"], row["reference"]
        t.add_row(row["size"], f"{row['gflop_per_pair']:.0f}", f"{o.get('median_s', float('nan')):.3f}",
                  f"{r.get('median_s', float('nan')):.3f}", f"{row.get('speedup_vs_reference', float('nan')):.2f}x",
                  f"{row.get('ort_gflop_s', float('nan')):.0f}", f"{row.get('ort_gflop_s', 0) / gemm:.0%}",
                  f"{o.get('peak_rss_mib', float('nan')):.0f}", f"{r.get('peak_rss_mib', float('nan')):.0f}")
    con.print(t)
    tt = Table(title="targets")
    for c in ("target", "value", "goal", "met"):
        tt.add_column(c)
    for x in res["targets"]:
        tt.add_row(x["target"], str(x["value"]), x["goal"], {True: "yes", False: "NO", None: "n/a"}[x["met"]])
    con.print(tt)
    print_quant(res.get("quant") or {}, con)
    h = res["hash"]
    con.print(f"sha256: tinyreg {h['tinyreg_mib_s']:.0f} MiB/s, sha256sum {h['sha256sum_mib_s'] or float('nan'):.0f} MiB/s "
              f"on {h['file_mib']} MiB")


if __name__ == "__main__":
    main()
