"""``check-ops --emit-ort-config`` covers what onnxruntime actually runs, checked against ORT's own converter."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from registry.onnx.allowlist import load_allowlist, ort_reduced_config
from registry.runtime.ops import optimized_ops, registry_runtime_ops
from registry.store.document import read_registry
from registry.store.layout import int8_rel

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "model" / "tiny" / "registry.json"
X86 = platform.machine().lower() in ("x86_64", "amd64")


def config_ops(text: str) -> set[tuple[str, str]]:
    out = set()
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            dom, _ver, ops = line.split(";")
            out.update((dom, op) for op in ops.split(","))
    return out


def shipped_models(dest: Path) -> list[Path]:
    reg = read_registry(SHIPPED)
    paths = []
    for e in reg.entries:
        for rel in (str(e["onnx"]), int8_rel(str(e["onnx"]))):
            if (SHIPPED.parent / rel).is_file():
                shutil.copy(SHIPPED.parent / rel, dest / rel)
                paths.append(dest / rel)
    return paths


def converter_ops(models_dir: Path, out: Path, *extra: str) -> set[tuple[str, str]]:
    p = subprocess.run([sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", "--output_dir", str(out), *extra,
                        str(models_dir)], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    configs = sorted(out.glob("required_operators*.config"))
    assert configs, sorted(out.iterdir())
    return set().union(*(config_ops(c.read_text()) for c in configs))


def test_int8_config_has_the_fused_and_contrib_ops() -> None:
    allow = load_allowlist()
    ops, models = registry_runtime_ops(SHIPPED, "int8")
    assert {"dists_vgg16.onnx", "dists_vgg16.int8.onnx", "lpips_vgg16.int8.onnx"} <= set(models)
    emitted = config_ops(ort_reduced_config(allow, "int8", ops, models))
    assert {("com.microsoft", "FusedConv"), ("com.microsoft", "QLinearConv")} <= emitted
    assert ("com.microsoft", "FusedConv") not in config_ops(ort_reduced_config(allow, "int8"))  # the allowlist alone lacks it


@pytest.mark.slow
def test_matches_what_convert_onnx_models_to_ort_requires(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    paths = shipped_models(models)
    assert len(paths) == 5  # dists and lpips fp32 + int8, ssim fp32 (not quantised)
    mine_portable: set[tuple[str, str]] = set()
    mine_x86: set[tuple[str, str]] = set()
    for p in paths:
        mine_portable |= optimized_ops(p.read_bytes(), nchwc=False)
        mine_x86 |= optimized_ops(p.read_bytes(), nchwc=True)
    # the converter's default (no NCHWc: portable) requires exactly the ops our optimisation finds
    tool = converter_ops(models, tmp_path / "out")
    assert tool == mine_portable, (sorted(tool - mine_portable), sorted(mine_portable - tool))
    assert {("com.microsoft", "FusedConv"), ("com.microsoft", "QLinearConv")} <= tool
    emitted = config_ops(ort_reduced_config(load_allowlist(), "int8", *registry_runtime_ops(SHIPPED, "int8")))
    assert tool <= emitted, sorted(tool - emitted)
    if X86:  # NCHWc allowed, as a session on this machine runs them; the converter's config also covers
        # its 'Runtime' style (basic optimisations now, the rest replayed at load), hence the union
        tool_x86 = converter_ops(models, tmp_path / "out-amd64", "--target_platform", "amd64")
        both = mine_portable | mine_x86
        assert tool_x86 == both, (sorted(tool_x86 - both), sorted(both - tool_x86))
        assert tool_x86 <= emitted, sorted(tool_x86 - emitted)


@pytest.mark.slow
def test_cli_emits_runtime_ops_and_warns_without_registry(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "registry", "check-ops", "--emit-ort-config", "int8", "--registry", str(SHIPPED)],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "com.microsoft;1;" in p.stdout and "FusedConv" in p.stdout
    p = subprocess.run([sys.executable, "-m", "registry", "check-ops", "--emit-ort-config", "fp32"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert p.returncode == 0 and "no registry found" in p.stderr and "ai.onnx;17;" in p.stdout
    p = subprocess.run([sys.executable, "-m", "registry", "check-ops", "--emit-ort-config", "nope"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert p.returncode == 2 and "'nope' is not one of 'fp32', 'int8'" in p.stderr  # an Enum choice, refused while parsing
