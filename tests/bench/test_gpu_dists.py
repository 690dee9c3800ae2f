"""bench/gpu_dists.py, the GPU throughput script the lead runs on a GPU machine: checked here on the CPU provider."""

from __future__ import annotations

import json
import math
from pathlib import Path

import onnxruntime as ort
import pytest

from bench import gpu_dists


def test_cpu_run_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_dists.main(["--size", "40x32", "--frames", "2", "--warmup", "1", "--provider", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["provider"] == "CPUExecutionProvider" and out["size"] == "40x32" and out["frames"] == 2
    assert out["frames_per_s"] > 0 and math.isfinite(out["score_sample"]) and out["score_sample"] > 0


def test_cuda_is_refused_without_the_provider(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert gpu_dists.main(["--size", "40x32", "--frames", "1", "--provider", "cuda"]) == 2
    assert "CUDAExecutionProvider is not available" in json.loads(capsys.readouterr().out)["error"]


def test_table_arguments_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_dists.parse_size("1920x1080") == (1920, 1080)
    for bad in ("1920", "axb", "8x8"):
        with pytest.raises(Exception, match="size"):
            gpu_dists.parse_size(bad)
    assert gpu_dists.parse_rows("ort-cuda-fp16, torch-bf16") == ["ort-cuda-fp16", "torch-bf16"]
    with pytest.raises(Exception, match="choose from"):
        gpu_dists.parse_rows("ort-cuda-fp8")
    with pytest.raises(SystemExit):
        gpu_dists.main(["--table", "--pairs", "0"])
    with pytest.raises(SystemExit):
        gpu_dists.main(["--table", "--rows", "nope"])
    assert set(gpu_dists.TABLE_ROWS) >= {"ort-cuda-fp32", "ort-cuda-tf32", "ort-cuda-fp16", "ort-trt-fp16", "torch-fp32",
                                         "torch-bf16", "torch-compile"}
    assert gpu_dists.DEFAULT_SIZES == ("1920x1080", "960x540")


def test_comparison_against_fp32_cpu() -> None:
    assert gpu_dists.max_abs_error([0.5, 0.25], [0.5, 0.2]) == pytest.approx(0.05)
    assert gpu_dists.max_abs_error([float("nan"), 0.2], [0.5, 0.2]) == math.inf  # an fp16 overflow is no small error
    assert gpu_dists.max_abs_error([0.5], [0.5, 0.2]) == math.inf and gpu_dists.max_abs_error([], []) == math.inf
    md = gpu_dists.markdown({"machine": {"gpu": "NVIDIA H100"}, "rows": [
        {"size": "960x540", "label": "a", "frames_per_s": 10.0, "median_ms": 100.0, "max_abs_vs_fp32_cpu": 1e-4},
        {"size": "960x540", "label": "b", "error": "no CUDA"}]})
    assert "| 960x540 | a | 10.0 | 100.00 | 1.00e-04 |" in md and "| 960x540 | b | - | - | no CUDA |" in md and "NVIDIA H100" in md


@pytest.mark.slow
def test_tiny_table_on_the_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The table machinery end to end on the CPU: fp32 CPU is the reference (error 0), fp16 close, GPU rows say why not."""
    out = tmp_path / "t.json"
    assert gpu_dists.main(["--table", "--sizes", "40x32", "--rows", "ort-cpu-fp32,ort-cpu-fp16,ort-trt-fp16,torch-fp32",
                           "--torch-device", "cpu", "--pairs", "2", "--frames", "1", "--warmup", "0", "--out", str(out)]) == 0
    rows = {r["row"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["ort-cpu-fp32"]["max_abs_vs_fp32_cpu"] == 0.0
    assert 0 < rows["ort-cpu-fp16"]["max_abs_vs_fp32_cpu"] < 1e-3
    assert rows["torch-fp32"]["max_abs_vs_fp32_cpu"] < 1e-5  # the torch port on the same pairs and weights
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        assert "TensorrtExecutionProvider is not available" in rows["ort-trt-fp16"]["error"]
    assert "| 40x32 | tinyreg fp16 (CPU) |" in capsys.readouterr().out
