"""bench/gpu_dists.py, the GPU throughput script the lead runs on a GPU machine: checked here on the CPU provider."""

from __future__ import annotations

import json
import math

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
