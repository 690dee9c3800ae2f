"""onnxruntime execution providers: CPU, CUDA and TensorRT, with TensorRT's caches kept out of the registry.

* ``cpu``: ``CPUExecutionProvider``.
* ``cuda``: ``CUDAExecutionProvider`` alone, TF32 off (TF32 convolutions moved DISTS scores by up to 5e-6
  from the fp32 CPU result on an H100, which parity and the gate must not absorb).
* ``tensorrt``: ``TensorrtExecutionProvider`` (nodes TensorRT cannot take fall back to CUDA, TF32 off).
  TensorRT builds an *engine* -- an unsigned native binary -- per graph and GPU. Its engine and timing
  caches live under ``$TINYREG_CACHE_DIR/trt/<model sha256>/<TensorRT version>/<GPU name>/`` (default
  cache root ``~/.cache/tinyreg``), keyed by the sha256 of the graph that runs (fp32, fp16 or int8), and
  are refused anywhere inside the registry folder: nothing signed vouches for an engine, so none is ever
  read from there. Precision is the graph's: TensorRT 10+ builds an fp16 graph in fp16 and an fp32 graph
  in fp32 (``trt_fp16_enable`` stays off; TensorRT 11 removed the builder's weak-typing flags).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.errors import UsageError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
LABELS = {"cuda": "CUDA", "tensorrt": "TensorRT"}
DEVICE_PROVIDERS = ("cuda", "tensorrt")
TRT_DISTRIBUTIONS = ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu13-libs", "tensorrt-cu12-libs")
CUDA_OPTIONS = {"use_tf32": "0"}


def check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise UsageError(f"provider {provider!r}: use cpu, cuda or tensorrt")


def cache_root() -> Path:
    """``$TINYREG_CACHE_DIR`` or ``~/.cache/tinyreg``."""
    env = os.environ.get("TINYREG_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tinyreg"


def _component(value: str, what: str) -> str:
    """One path component from a version or a GPU name: [A-Za-z0-9._-], never '.', '..' or empty."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", value.strip())[:96].strip("_")
    if s in ("", ".", ".."):
        raise UsageError(f"TensorRT cache: cannot make a folder name from the {what} {value!r}")
    return s


def trt_cache_dir(model_sha256: str, trt_version: str, gpu_name: str, *, registry_root: Path,
                  root: Path | None = None) -> Path:
    """Where TensorRT's engine and timing caches for this graph, TensorRT version and GPU live.

    Refused (UsageError) when that folder would lie inside the registry folder (the resolved paths,
    so a symlink cannot hide it): engines are unsigned binaries and are never read from there.
    """
    if not re.fullmatch(r"[0-9a-f]{64}", model_sha256):
        raise UsageError(f"TensorRT cache: {model_sha256!r} is not a sha256 digest")
    base = (root if root is not None else cache_root()).expanduser()
    folder = base / "trt" / model_sha256 / _component(trt_version, "TensorRT version") / _component(gpu_name, "GPU name")
    reg = registry_root.resolve()
    where = folder.resolve()
    if where == reg or reg in where.parents:
        raise UsageError(f"TensorRT cache {folder} lies inside the registry folder {registry_root}: engines are unsigned "
                         "binaries and are never kept or loaded there (set TINYREG_CACHE_DIR to a folder outside it)")
    return folder


def trt_provider_options(cache: Path) -> dict[str, str]:
    """TensorRT execution provider options: engine and timing caches in ``cache``; precision from the graph."""
    return {
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": "1",
        "trt_timing_cache_path": str(cache),
        "trt_fp16_enable": "0",  # an fp16 graph runs in fp16 by itself; an fp32 graph must stay fp32
        "trt_int8_enable": "0",
        "trt_dump_ep_context_model": "0",
    }


def tensorrt_version() -> str:
    from importlib import metadata

    for dist in TRT_DISTRIBUTIONS:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def gpu_name(device: int = 0) -> str:
    """The GPU's name as ``nvidia-smi`` reports it (the device the provider uses), or 'unknown-gpu'."""
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "unknown-gpu"
    try:
        res = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader", "-i", str(device)], capture_output=True,
                             text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown-gpu"
    name = res.stdout.strip().splitlines()[0] if res.returncode == 0 and res.stdout.strip() else ""
    return name or "unknown-gpu"


@dataclass(frozen=True)
class ProviderPlan:
    provider: str  # cpu, cuda, tensorrt
    providers: list[Any]  # what onnxruntime is given
    cache: Path | None = None  # TensorRT caches


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def plan(provider: str, *, model_sha256: str | None = None, registry_root: Path | None = None,
         available: list[str] | None = None, trt_version: str | None = None, gpu: str | None = None,
         root: Path | None = None) -> ProviderPlan:
    """The providers for ``provider``; refuses one this onnxruntime cannot run (one line naming what to install).

    TensorRT needs ``model_sha256`` (the graph that will run) and ``registry_root`` for its cache folder,
    which is created (0700) here.
    """
    check_provider(provider)
    if provider == "cpu":
        return ProviderPlan("cpu", ["CPUExecutionProvider"])
    have = available if available is not None else available_providers()
    if PROVIDERS[provider] not in have:
        extra = "tinyreg[tensorrt] (onnxruntime-gpu and the tensorrt wheels)" if provider == "tensorrt" else \
            "tinyreg[gpu] (onnxruntime-gpu)"
        raise UsageError(f"provider '{provider}': this onnxruntime has no {LABELS[provider]} provider (it has {', '.join(have)}); "
                         f"install {extra} on a machine with an NVIDIA GPU")
    if available is None:
        import onnxruntime as ort

        if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from the nvidia-* wheels, where that is how they came
            ort.preload_dlls()
    if provider == "cuda":
        return ProviderPlan("cuda", [("CUDAExecutionProvider", dict(CUDA_OPTIONS))])
    if model_sha256 is None or registry_root is None:
        raise UsageError("provider 'tensorrt' needs the graph's sha256 and the registry folder to place its caches")
    cache = trt_cache_dir(model_sha256, trt_version or tensorrt_version(), gpu or gpu_name(), registry_root=registry_root,
                          root=root)
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    return ProviderPlan("tensorrt", [("TensorrtExecutionProvider", trt_provider_options(cache)),
                                     ("CUDAExecutionProvider", dict(CUDA_OPTIONS))], cache)


def providers_for(provider: str, *, model_sha256: str | None = None, registry_root: Path | None = None) -> list[Any]:
    """onnxruntime providers for ``cpu``, ``cuda`` or ``tensorrt`` (see :func:`plan`)."""
    return plan(provider, model_sha256=model_sha256, registry_root=registry_root).providers
