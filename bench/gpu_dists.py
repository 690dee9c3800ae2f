"""DISTS frames/s on a GPU with onnxruntime (CUDAExecutionProvider), self-contained; prints one JSON object.

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080", help="WxH (default 1920x1080)")
    ap.add_argument("--frames", type=int, default=50, help="timed frames (pairs) after warm-up")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--provider", choices=("cuda", "cpu", "torch-cuda"), default="cuda")
    ap.add_argument("--bf16", action="store_true", help="torch-cuda: bfloat16 autocast")
    ap.add_argument("--host-inputs", action="store_true", help="copy each frame from host memory (cuda)")
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (cpu provider)")
    ap.add_argument("--tf32", action="store_true", help="cuda: allow TF32 convolutions (faster, not fp32-exact)")
    a = ap.parse_args(argv)
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
