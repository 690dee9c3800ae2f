"""One measurement per process, so peak RSS belongs to that measurement alone.

Peak RSS is the process's own high-water mark (``VmHWM``, reset by exec). ``ru_maxrss`` is not:
Linux keeps it across fork and exec, so a worker started by a bench process that had imported
torch and Ray reported the parent's 618 MiB as its own peak at every small size.

python -m bench._worker ort|reference|reference-bf16 H W REPS MODEL_OR_WEIGHTS...
(reference-bf16: the reference under torch.autocast("cpu", dtype=torch.bfloat16))
Prints one JSON line: median seconds, all timings, peak RSS in MiB.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
import warnings


def peak_rss_mib() -> float:
    """This process's peak resident set in MiB: VmHWM where /proc has it, else ru_maxrss."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    kind, h, w, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    import numpy as np

    rng = np.random.default_rng(0)
    x01 = rng.random((1, 3, h, w), dtype=np.float32)
    y01 = np.clip(x01 + rng.normal(0, 0.05, x01.shape), 0, 1).astype(np.float32)
    if kind.startswith("ort"):
        import onnxruntime as ort

        from registry.runtime.loader import default_session_options

        so = default_session_options(int(sys.argv[6]) if len(sys.argv) > 6 else 0)
        with open(sys.argv[5], "rb") as fh:
            sess = ort.InferenceSession(fh.read(), so, providers=["CPUExecutionProvider"])
        mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
        std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
        feeds = {"ref": (x01 - mean) / std, "dist": (y01 - mean) / std}

        def run() -> None:
            sess.run(None, feeds)
    else:
        import torch

        from registry.export.core import WeightSource, fetch_weights, resolve_weights
        from registry.families import get_family
        from registry.families.dists import load
        from registry.families.dists.reference import reference_model

        torch.set_num_threads(int(sys.argv[9]) if len(sys.argv) > 9 else torch.get_num_threads())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            given = [WeightSource("vgg16", sys.argv[5], sys.argv[6]), WeightSource("alpha_beta", sys.argv[7], sys.argv[8])]
            state, alpha, beta, _ = load(fetch_weights(resolve_weights(get_family("dists"), given)))
        model = reference_model(state, alpha, beta)
        xt, yt = torch.from_numpy(x01), torch.from_numpy(y01)
        bf16 = kind == "reference-bf16"

        def run() -> None:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(xt, yt)

    for _ in range(2):  # warm-up: the first runs plan and fault in memory
        run()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    peak = peak_rss_mib()
    print(json.dumps({"median_s": statistics.median(times), "times_s": times, "peak_rss_mib": peak}))


if __name__ == "__main__":
    main()
