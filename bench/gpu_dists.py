"""DISTS frames/s on a GPU with onnxruntime (CUDA, TensorRT) and torch, self-contained.

The whole comparison table of issue 18 in one command (an H100 or H200; ~10 minutes with TensorRT's first
engine builds)::

    python bench/gpu_dists.py --table --out gpu_dists.json

rows at 1920x1080 and 960x540: tinyreg fp32 (CUDA, TF32 off), tinyreg TF32, tinyreg fp16 CUDA, tinyreg fp16
TensorRT, torch fp32, torch bf16 autocast and torch.compile (bf16 autocast), each with its frames/s and its
max |score - fp32 CPU| on the same natural pairs (the fp32 graph on onnxruntime's CPU provider is the
reference). A row whose provider or library is missing records why instead of a figure. A tiny run
anywhere (what the tests do)::

    python bench/gpu_dists.py --table --sizes 64x48 --rows ort-cpu-fp32,ort-cpu-fp16,torch-fp32 --torch-device cpu \
        --pairs 2 --frames 2 --warmup 1

One row, as before::

    python bench/gpu_dists.py --size 1920x1080 --frames 50 --provider cuda
    python bench/gpu_dists.py --size 128x96 --frames 3 --provider cpu      # a smoke run anywhere

The model is the real-size DISTS graph built by tinyreg's own builder from a seeded random
VGG-16 and seeded random alpha/beta (speed does not depend on weight values). It needs numpy,
onnx and onnxruntime (onnxruntime-gpu for cuda) and this repository on the path; no torch.
A frame is one ref/dist pair. For cuda the timed loop feeds device-resident inputs
(OrtValue + IOBinding), so the figure is the model's; ``--host-inputs`` times host-to-device
copies of each frame as well. A cuda run that onnxruntime would place on the CPU is refused.

``--provider torch-cuda`` times tinyreg's PyTorch port of the same model (registry/families/dists/port.py,
same weights) on the GPU instead, fp32 or ``--bf16`` autocast: a reference figure for machines without
onnxruntime-gpu (it needs torch with CUDA, and is not the onnxruntime figure).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def weights(seed: int = 7) -> tuple[Any, Any, Any]:
    """Seeded random VGG-16 state and alpha/beta (raw; both paths normalise them the same way)."""
    import numpy as np

    from registry.families.vgg import VGG16_WIDTHS, random_vgg

    state = random_vgg(VGG16_WIDTHS, seed)
    n = 3 + sum(VGG16_WIDTHS)
    rng = np.random.default_rng(seed)
    return state, rng.random(n).astype(np.float32), rng.random(n).astype(np.float32)


def build(opset: int = 17, seed: int = 7) -> bytes:
    from registry.families.dists.graph import build_dists, normalise_weights

    state, a, b = weights(seed)
    alpha, beta = normalise_weights(a, b)
    model: Any = build_dists(state, alpha, beta, opset=opset, doc="DISTS, random VGG-16 (benchmark)")
    return bytes(model.SerializeToString())


def torch_cuda(w: int, h: int, frames: int, warmup: int, bf16: bool) -> dict[str, Any]:
    import torch

    from registry.families.dists.port import DISTS

    state, a, b = weights()
    model = DISTS(state, a, b).cuda().eval()
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.rand((1, 3, h, w), device="cuda", generator=g)
    y = (x + 0.05 * torch.randn((1, 3, h, w), device="cuda", generator=g)).clamp(0, 1)
    torch.backends.cudnn.benchmark = True

    def run() -> float:
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            return float(model(x, y))  # float() waits for the GPU

    for _ in range(warmup):
        run()
    times = []
    for _ in range(frames):
        t = time.perf_counter()
        score = run()
        times.append(time.perf_counter() - t)
    return {"size": f"{w}x{h}", "provider": "torch-cuda", "dtype": "bf16 autocast" if bf16 else "fp32",
            "tf32": torch.backends.cudnn.allow_tf32, "frames": frames, "frames_per_s": frames / sum(times),
            "median_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times), "score_sample": score,
            "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}


# ---------------------------------------------------------------- the table (--table)

TABLE_ROWS = ("ort-cuda-fp32", "ort-cuda-tf32", "ort-cuda-fp16", "ort-trt-fp16", "torch-fp32", "torch-bf16", "torch-compile")
CPU_ROWS = ("ort-cpu-fp32", "ort-cpu-fp16")  # for runs without a GPU (tests)
LABELS = {
    "ort-cuda-fp32": "tinyreg fp32 (CUDA, TF32 off)", "ort-cuda-tf32": "tinyreg fp32 graph, TF32 (CUDA)",
    "ort-cuda-fp16": "tinyreg fp16 (CUDA)", "ort-trt-fp16": "tinyreg fp16 (TensorRT)", "ort-cpu-fp32": "tinyreg fp32 (CPU)",
    "ort-cpu-fp16": "tinyreg fp16 (CPU)", "torch-fp32": "torch fp32", "torch-bf16": "torch bf16 autocast",
    "torch-compile": "torch.compile, bf16 autocast",
}
DEFAULT_SIZES = ("1920x1080", "960x540")


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (w, h), both >= 16."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size {text!r}: use WxH, e.g. 1920x1080") from exc
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"size {text!r}: at least 16x16")
    return w, h


def parse_rows(text: str) -> list[str]:
    rows = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in rows if r not in TABLE_ROWS + CPU_ROWS]
    if bad or not rows:
        raise argparse.ArgumentTypeError(f"rows {bad or text!r}: choose from {', '.join(TABLE_ROWS + CPU_ROWS)}")
    return rows


def max_abs_error(scores: list[float], reference: list[float]) -> float:
    """max |score - reference| over the same pairs; inf when a score is not finite or a pair is missing."""
    import math

    if len(scores) != len(reference) or not scores:
        return math.inf
    errs = [abs(a - b) for a, b in zip(scores, reference, strict=True)]
    return math.inf if any(not math.isfinite(e) for e in errs) else max(errs)


def natural_feeds(w: int, h: int, n: int, seed: int = 0) -> list[tuple[Any, Any, dict[str, Any]]]:
    """``n`` natural pairs (scikit-image's images under real distortions) at w x h: (ref RGB, dist RGB, model feeds)."""
    from registry.families import get_family
    from registry.media.images import fr_pairs
    from registry.plugin import Sample

    fam = get_family("dists")
    out = []
    for p in fr_pairs(n, (h, w), seed):
        out.append((p.ref, p.dist, fam.feeds(Sample(p.name, {"ref": p.ref, "dist": p.dist}))))
    return out


def fp16_graph(fp32: bytes) -> bytes:
    from registry.families import get_family
    from registry.plugin import Fp16
    from registry.quant.fp16 import convert_bytes

    pol = get_family("dists").fp16
    assert isinstance(pol, Fp16)
    return convert_bytes(fp32, pol)[0]


def ort_row(row: str, graphs: dict[str, bytes], pairs: list[Any], frames: int, warmup: int, threads: int,
            cache: str) -> dict[str, Any]:
    """One onnxruntime row: scores of every pair, then ``frames`` timed frames (inputs uploaded each frame, IOBinding)."""
    import onnxruntime as ort

    from registry.runtime.binding import BoundRunner, PlainRunner

    precision = "fp16" if row.endswith("fp16") else "fp32"
    providers: list[Any]
    if row.startswith("ort-cpu"):
        want, providers, device = "CPUExecutionProvider", ["CPUExecutionProvider"], "cpu"
    elif row.startswith("ort-cuda"):
        want, device = "CUDAExecutionProvider", "cuda"
        providers = [(want, {"use_tf32": "1" if row.endswith("tf32") else "0", "cudnn_conv_algo_search": "EXHAUSTIVE",
                             "prefer_nhwc": "1"})]
    else:
        import hashlib

        from registry.runtime.providers import trt_provider_options

        want, device = "TensorrtExecutionProvider", "cuda"
        folder = Path(cache) / "trt" / hashlib.sha256(graphs[precision]).hexdigest()
        folder.mkdir(parents=True, exist_ok=True)
        providers = [(want, trt_provider_options(folder)), ("CUDAExecutionProvider", {"use_tf32": "0"})]
    if want not in ort.get_available_providers():
        return {"error": f"{want} is not available in this onnxruntime ({', '.join(ort.get_available_providers())})"}
    if device == "cuda" and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    so = ort.SessionOptions()
    so.enable_mem_pattern = False
    so.intra_op_num_threads = threads
    if device == "cuda":
        so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    t0 = time.perf_counter()
    notes: dict[str, Any] = {}
    try:
        sess = ort.InferenceSession(graphs[precision], so, providers=providers)
    except Exception as exc:  # a provider that cannot build this graph: recorded, the table goes on
        if row.startswith("ort-cuda"):  # an onnxruntime-gpu that does not know prefer_nhwc: again without it
            providers = [(want, {k: v for k, v in providers[0][1].items() if k != "prefer_nhwc"})]
            notes["prefer_nhwc"] = f"refused ({exc.__class__.__name__}); run without"
            try:
                sess = ort.InferenceSession(graphs[precision], so, providers=providers)
            except Exception as exc2:
                return {"error": f"{exc2.__class__.__name__}: {str(exc2).splitlines()[0][:300] if str(exc2) else ''}"}
        else:
            return {"error": f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
    if sess.get_providers()[0] != want:
        return {"error": f"onnxruntime ran {sess.get_providers()} instead of {want}"}
    runner = BoundRunner(sess, device) if device == "cuda" else PlainRunner(sess)
    scores = [runner(f) for _, _, f in pairs]  # the first run builds TensorRT's engine
    setup_s = time.perf_counter() - t0
    return {**timed(lambda i: runner(pairs[i % len(pairs)][2]), frames, warmup), "scores": scores, "setup_s": setup_s,
            "onnxruntime": ort.__version__, **notes}


def timed(run: Any, frames: int, warmup: int) -> dict[str, Any]:
    for i in range(warmup):
        run(i)
    times = []
    for i in range(frames):
        t = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - t)
    return {"frames": frames, "frames_per_s": frames / sum(times), "median_ms": 1000 * statistics.median(times)}


def torch_row(row: str, pairs: list[Any], frames: int, warmup: int, device: str) -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"error": "torch is not installed"}
    if device == "cuda" and not torch.cuda.is_available():
        return {"error": "torch has no usable CUDA device here"}
    from registry.families.dists.port import DISTS

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False  # torch fp32 means fp32; bf16 rows say so
    torch.backends.cudnn.benchmark = device == "cuda"
    state, a, b = weights()
    model: Any = DISTS(state, a, b).to(device).eval()
    bf16 = row in ("torch-bf16", "torch-compile")
    t0 = time.perf_counter()
    if row == "torch-compile":
        try:
            model = torch.compile(model)
        except Exception as exc:
            return {"error": f"torch.compile: {exc.__class__.__name__}: {str(exc)[:200]}"}
    tensors = [(torch.from_numpy(r.transpose(2, 0, 1)[None].copy()), torch.from_numpy(d.transpose(2, 0, 1)[None].copy()))
               for r, d, _ in pairs]

    def run(i: int) -> float:
        x, y = tensors[i % len(tensors)]
        with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            return float(model(x.to(device, non_blocking=True), y.to(device, non_blocking=True)))  # float() waits

    try:
        scores = [run(i) for i in range(len(tensors))]
    except Exception as exc:  # torch.compile "where it works"
        return {"error": f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
    setup_s = time.perf_counter() - t0
    return {**timed(run, frames, warmup), "scores": scores, "setup_s": setup_s, "torch": torch.__version__}


def machine() -> dict[str, Any]:
    import subprocess

    info: dict[str, Any] = {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()}
    try:
        info["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["gpu"] = None
    from importlib import metadata

    for dist in ("onnxruntime", "onnxruntime-gpu", "tensorrt", "tensorrt-cu12", "tensorrt-cu13", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            info[dist] = metadata.version(dist)
    return info


def table(sizes: list[tuple[int, int]], rows: list[str], n_pairs: int, frames: int, warmup: int, threads: int,
          torch_device: str, cache: str) -> dict[str, Any]:
    """Every row at every size, with max |score - fp32 CPU| on the same pairs."""
    import onnxruntime as ort

    t0 = time.perf_counter()
    fp32 = build()
    graphs = {"fp32": fp32, "fp16": fp16_graph(fp32)}
    out: dict[str, Any] = {"machine": machine(), "rows": [], "build_s": time.perf_counter() - t0}
    for w, h in sizes:
        pairs = natural_feeds(w, h, n_pairs)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        cpu = ort.InferenceSession(fp32, so, providers=["CPUExecutionProvider"])
        reference = [float(cpu.run(None, f)[0]) for _, _, f in pairs]
        for row in rows:
            res = (torch_row(row, pairs, frames, warmup, torch_device) if row.startswith("torch")
                   else ort_row(row, graphs, pairs, frames, warmup, threads, cache))
            rec = {"row": row, "label": LABELS[row], "size": f"{w}x{h}", **res}
            if "scores" in res:
                rec["max_abs_vs_fp32_cpu"] = max_abs_error(res["scores"], reference)
            out["rows"].append(rec)
            print(json.dumps(rec, sort_keys=True), flush=True)
    return out


def markdown(result: dict[str, Any]) -> str:
    """The table as Markdown (rows in the order run)."""
    lines = ["| size | row | frames/s | median ms | max abs(score - fp32 CPU) |", "|---|---|---:|---:|---:|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['size']} | {r['label']} | - | - | {r['error']} |")
        else:
            lines.append(f"| {r['size']} | {r['label']} | {r['frames_per_s']:.1f} | {r['median_ms']:.2f} | "
                         f"{r['max_abs_vs_fp32_cpu']:.2e} |")
    m = result["machine"]
    lines.append("")
    lines.append("machine: " + ", ".join(f"{k} {v}" for k, v in m.items() if v))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true", help="every row at every size (issue 18's comparison table)")
    ap.add_argument("--sizes", type=parse_size, nargs="+", default=None, help="table: WxH ... (default 1920x1080 960x540)")
    ap.add_argument("--rows", type=parse_rows, default=list(TABLE_ROWS), help=f"table: comma-separated, of "
                    f"{', '.join(TABLE_ROWS + CPU_ROWS)}")
    ap.add_argument("--pairs", type=int, default=3, help="table: natural pairs the errors are measured on")
    ap.add_argument("--torch-device", default="cuda", choices=("cuda", "cpu"), help="table: where torch rows run")
    ap.add_argument("--cache", default=None, help="table: TensorRT engine/timing cache root (default: a temporary folder)")
    ap.add_argument("--out", default=None, help="table: also write the JSON result here")
    ap.add_argument("--size", default="1920x1080", help="WxH (default 1920x1080)")
    ap.add_argument("--frames", type=int, default=50, help="timed frames (pairs) after warm-up")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--provider", choices=("cuda", "cpu", "torch-cuda"), default="cuda")
    ap.add_argument("--bf16", action="store_true", help="torch-cuda: bfloat16 autocast")
    ap.add_argument("--host-inputs", action="store_true", help="copy each frame from host memory (cuda)")
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (cpu provider)")
    ap.add_argument("--tf32", action="store_true", help="cuda: allow TF32 convolutions (faster, not fp32-exact)")
    a = ap.parse_args(argv)
    if a.table:
        import tempfile

        if a.pairs < 1 or a.frames < 1 or a.warmup < 0:
            ap.error("--pairs and --frames must be >= 1, --warmup >= 0")
        sizes = a.sizes or [parse_size(s) for s in DEFAULT_SIZES]
        with tempfile.TemporaryDirectory(prefix="tinyreg-trt-") as tmp:
            result = table(sizes, a.rows, a.pairs, a.frames, a.warmup, a.threads, a.torch_device, a.cache or tmp)
        if a.out:
            Path(a.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(markdown(result), flush=True)
        return 0
    w, h = (int(v) for v in a.size.lower().split("x"))

    if a.provider == "torch-cuda":
        print(json.dumps(torch_cuda(w, h, a.frames, a.warmup, a.bf16), sort_keys=True), flush=True)
        return 0
    import numpy as np
    import onnxruntime as ort

    want = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}[a.provider]
    if want not in ort.get_available_providers():
        print(json.dumps({"error": f"{want} is not available in this onnxruntime ({ort.get_available_providers()}); "
                                   "install onnxruntime-gpu"}), flush=True)
        return 2
    t0 = time.perf_counter()
    data = build()
    build_s = time.perf_counter() - t0
    so = ort.SessionOptions()
    so.enable_mem_pattern = False
    so.intra_op_num_threads = a.threads
    providers: list[Any] = [want]
    if a.provider == "cuda":
        if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from the nvidia-* wheels
            ort.preload_dlls()
        so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        # CUDA alone: onnxruntime refuses a CPU provider named beside a disabled CPU fallback
        providers = [(want, {"cudnn_conv_algo_search": "EXHAUSTIVE", "use_tf32": "1" if a.tf32 else "0"})]
    sess = ort.InferenceSession(data, so, providers=providers)
    if sess.get_providers()[0] != want:
        print(json.dumps({"error": f"onnxruntime ran {sess.get_providers()} instead of {want}"}), flush=True)
        return 2
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((1, 3, h, w), dtype=np.float32)
    dist = (ref + rng.normal(0, 0.1, ref.shape)).astype(np.float32)
    device = a.provider == "cuda" and not a.host_inputs
    if device:
        binding = sess.io_binding()
        binding.bind_ortvalue_input("ref", ort.OrtValue.ortvalue_from_numpy(ref, "cuda", 0))
        binding.bind_ortvalue_input("dist", ort.OrtValue.ortvalue_from_numpy(dist, "cuda", 0))
        binding.bind_output(sess.get_outputs()[0].name, "cuda", 0)

        def run() -> float:
            sess.run_with_iobinding(binding)
            return float(binding.copy_outputs_to_cpu()[0])  # the copy waits for the GPU
    else:
        def run() -> float:
            return float(sess.run(None, {"ref": ref, "dist": dist})[0])

    for _ in range(a.warmup):
        run()
    times = []
    for _ in range(a.frames):
        t = time.perf_counter()
        score = run()
        times.append(time.perf_counter() - t)
    total = sum(times)
    out = {
        "size": f"{w}x{h}", "provider": want, "inputs": "device" if device else "host", "frames": a.frames,
        "frames_per_s": a.frames / total, "median_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times),
        "build_s": build_s, "score_sample": score, "onnxruntime": ort.__version__, "python": platform.python_version(),
        "tf32": bool(a.tf32 and a.provider == "cuda"),
    }
    if a.provider == "cuda":
        try:
            import subprocess

            out["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                        capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    print(json.dumps(out, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
