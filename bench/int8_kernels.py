"""Which int8 kernels onnxruntime runs here, and where int8 DISTS spends its time.

    python -m bench.int8_kernels [--size 960x540] [--threads 0]

Prints one JSON object:
* ``cpu``: the ISA flags that decide MLAS's int8 GEMM (avx512_vnni / avx_vnni / amx_int8);
* ``conv``: one 3x3 conv, 256 -> 256 channels at 68x120, + Relu: fp32 against int8 QDQ and
  QOperator, u8 activations / s8 weights and s8 / s8, in GOP/s (2 x MACs / s);
* ``dists``: DISTS (random VGG-16, random alpha/beta) fp32, static int8 QDQ (tinyreg's format)
  and static int8 QOperator: median latency and, from onnxruntime's profiler, the time per op type
  and the share spent in int8 ops, fp32 ops and layout/quantisation glue.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

INT8_OPS = {"QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul"}
GLUE_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Transpose", "ReorderInput", "ReorderOutput"}


def cpu_flags() -> dict[str, Any]:
    flags: set[str] = set()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"model": model, "avx512_vnni": "avx512_vnni" in flags, "avx_vnni": "avx_vnni" in flags,
            "avx512_bf16": "avx512_bf16" in flags, "amx_int8": "amx_int8" in flags, "amx_bf16": "amx_bf16" in flags}


def _session(data: bytes, threads: int, profile: str | None = None) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.enable_mem_pattern = False
    if profile:
        so.enable_profiling = True
        so.profile_file_prefix = profile
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def _median(fn: Any, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _quantize(fp32: bytes, feeds: list[dict[str, np.ndarray]], fmt: str, act: str, nodes: list[str] | None = None) -> bytes:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "a.onnx", Path(d) / "b.onnx"
        src.write_bytes(fp32)
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ if fmt == "QDQ" else QuantFormat.QOperator,
                        op_types_to_quantize=["Conv"], nodes_to_quantize=nodes, per_channel=True,
                        activation_type=QuantType.QUInt8 if act == "u8" else QuantType.QInt8, weight_type=QuantType.QInt8)
        return bytes(onnx.load(str(dst)).SerializeToString())


def conv_rates(threads: int) -> list[dict[str, Any]]:
    from onnx import TensorProto, helper, numpy_helper

    c, h, w = 256, 68, 120
    rng = np.random.default_rng(0)
    wt = (rng.standard_normal((c, c, 3, 3)) * np.sqrt(2 / (c * 9))).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[1, 1, 1, 1]), helper.make_node("Relu", ["y"], ["z"])],
        "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, c, h, w])],
        [numpy_helper.from_array(wt, "w"), numpy_helper.from_array(np.zeros(c, np.float32), "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    fp32 = m.SerializeToString()
    x = np.abs(rng.standard_normal((1, c, h, w))).astype(np.float32)
    feeds = [{"x": np.abs(rng.standard_normal((1, c, h, w))).astype(np.float32)} for _ in range(4)]
    gop = 2 * c * c * 9 * h * w / 1e9
    rows = []
    for label, data in (("fp32", fp32), ("int8 QDQ u8/s8", _quantize(fp32, feeds, "QDQ", "u8")),
                        ("int8 QOperator u8/s8", _quantize(fp32, feeds, "QOperator", "u8")),
                        ("int8 QDQ s8/s8", _quantize(fp32, feeds, "QDQ", "s8")),
                        ("int8 QOperator s8/s8", _quantize(fp32, feeds, "QOperator", "s8"))):
        sess = _session(data, threads)
        t = _median(lambda sess=sess: sess.run(None, {"x": x}), 7)
        rows.append({"graph": label, "ms": 1000 * t, "gop_s": gop / t})
    return rows


def _profile_ops(sess: Any, feeds: dict[str, np.ndarray]) -> dict[str, float]:
    sess.run(None, feeds)
    path = sess.end_profiling()
    per: dict[str, float] = defaultdict(float)
    for ev in json.loads(Path(path).read_text()):
        if ev.get("cat") == "Node" and str(ev.get("name", "")).endswith("_kernel_time"):
            per[str(ev.get("args", {}).get("op_name", "?"))] += ev.get("dur", 0) / 1e3
    Path(path).unlink(missing_ok=True)
    return dict(per)


def dists(h: int, w: int, threads: int) -> dict[str, Any]:
    from bench.gpu_dists import build
    from registry.families.dists import FAMILY
    from registry.media.images import imagenet_nchw

    fp32 = build()
    assert FAMILY.quant is not None
    pol = FAMILY.quant
    import onnx

    nodes = [n.name for n in onnx.load_from_string(fp32).graph.node if n.op_type in pol.op_types and n.name.startswith(pol.node_prefixes)]
    mean, std = FAMILY.input_conventions["mean"], FAMILY.input_conventions["std"]
    rng = np.random.default_rng(1)
    calib = []
    for _ in range(pol.calibration_pairs):
        r = rng.random((64, 64, 3), dtype=np.float32)
        calib.append({"ref": imagenet_nchw(r, mean, std), "dist": imagenet_nchw(np.clip(r + rng.normal(0, 0.1, r.shape), 0, 1), mean, std)})
    x = rng.random((h, w, 3), dtype=np.float32)
    feeds = {"ref": imagenet_nchw(x, mean, std), "dist": imagenet_nchw(np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1), mean, std)}
    out: dict[str, Any] = {"size": f"{w}x{h}", "threads": threads}
    with tempfile.TemporaryDirectory() as d:
        for label, data in (("fp32", fp32), ("int8 QDQ (tinyreg)", _quantize(fp32, calib, "QDQ", "u8", nodes)),
                            ("int8 QOperator", _quantize(fp32, calib, "QOperator", "u8", nodes))):
            sess = _session(data, threads)
            t = _median(lambda sess=sess: sess.run(None, feeds), 3)
            per = _profile_ops(_session(data, threads, str(Path(d) / "p")), feeds)
            total = sum(per.values()) or 1.0
            share = {"int8": sum(v for k, v in per.items() if k in INT8_OPS) / total,
                     "glue (Q/DQ, layout)": sum(v for k, v in per.items() if k in GLUE_OPS) / total}
            share["fp32"] = 1.0 - share["int8"] - share["glue (Q/DQ, layout)"]
            top = sorted(per.items(), key=lambda kv: -kv[1])[:8]
            out[label] = {"median_s": t, "share": share, "top_ops_ms": {k: round(v, 1) for k, v in top}}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="960x540")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.lower().split("x"))
    threads = a.threads or os.cpu_count() or 1
    import onnxruntime as ort

    res = {"onnxruntime": ort.__version__, "cpu": cpu_flags(), "conv": conv_rates(threads), "dists": dists(h, w, threads)}
    print(json.dumps(res, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
