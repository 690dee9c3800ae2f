"""registry.load(precision=...), the one sibling selection, TensorRT cache location rules, provider refusals, IOBinding."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from registry.errors import UsageError
from registry.runtime.binding import BoundRunner, PlainRunner
from registry.runtime.loader import load, load_entry
from registry.runtime.precision import parse_precision, select_graph
from registry.runtime.providers import plan, trt_cache_dir, trt_provider_options
from tests.conftest import REPO

TINY = REPO / "model" / "tiny" / "registry.json"
SHA = "ab" * 32


@pytest.mark.filterwarnings("ignore:.*SMOKE PLACEHOLDER")
def test_load_precision(fp16_master: Path) -> None:
    s32, e = load_entry("dists_vgg16", fp16_master)
    s16 = load("dists_vgg16", fp16_master, precision="fp16")
    s8 = load("dists_vgg16", fp16_master, precision="int8")
    feeds = {"ref": np.random.default_rng(0).random((1, 3, 32, 32), np.float32), "dist": np.zeros((1, 3, 32, 32), np.float32)}
    a, b, c = (float(s.run(None, feeds)[0]) for s in (s32, s16, s8))
    assert a != b and abs(a - b) < 1e-3 and a != c
    assert select_graph(e, "fp16").rel == "dists_vgg16.fp16.onnx" and select_graph(e, "fp16").sha256 == e["fp16_sha256"]
    assert select_graph(e, "int8").role == "int8" and select_graph(e, "fp32").sha256 == e["sha256"]


def test_load_precision_refusals() -> None:
    with pytest.raises(UsageError, match="has no fp16 sibling"):
        load("dists_vgg16", TINY, precision="fp16")
    with pytest.raises(UsageError, match="precision 'fp8'"):
        load("dists_vgg16", TINY, precision="fp8")
    with pytest.raises(UsageError, match="disagree"):
        load("dists_vgg16", TINY, precision="fp16", int8=True)
    assert parse_precision(None) == "fp32" and parse_precision("fp32", int8=True) == "int8"


def test_trt_cache_dir_is_keyed_and_outside_the_registry(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    reg.mkdir()
    root = tmp_path / "cache"
    d = trt_cache_dir(SHA, "10.9.0.34", "NVIDIA H100 80GB HBM3", registry_root=reg, root=root)
    assert d == root / "trt" / SHA / "10.9.0.34" / "NVIDIA_H100_80GB_HBM3"
    assert trt_cache_dir(SHA, "10.9", "H200", registry_root=reg, root=root) != trt_cache_dir(SHA, "10.9", "H100",
                                                                                             registry_root=reg, root=root)
    with pytest.raises(UsageError, match="inside the registry folder"):
        trt_cache_dir(SHA, "10.9", "H100", registry_root=reg, root=reg)
    with pytest.raises(UsageError, match="inside the registry folder"):
        trt_cache_dir(SHA, "10.9", "H100", registry_root=reg, root=reg / "sub" / "..")
    (tmp_path / "innocent").symlink_to(reg)  # a cache root that is the registry folder under another name
    with pytest.raises(UsageError, match="inside the registry folder"):
        trt_cache_dir(SHA, "10.9", "H100", registry_root=reg, root=tmp_path / "innocent")
    with pytest.raises(UsageError, match="not a sha256"):
        trt_cache_dir("../../etc", "10.9", "H100", registry_root=reg, root=root)
    with pytest.raises(UsageError, match="folder name"):
        trt_cache_dir(SHA, "..", "H100", registry_root=reg, root=root)
    assert trt_cache_dir(SHA, "10/../../x", "a/b", registry_root=reg, root=root).parent.parent.parent == root / "trt"


def test_trt_cache_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = tmp_path / "reg"
    reg.mkdir()
    monkeypatch.setenv("TINYREG_CACHE_DIR", str(tmp_path / "c"))
    assert trt_cache_dir(SHA, "10", "g", registry_root=reg).is_relative_to(tmp_path / "c" / "trt")
    monkeypatch.setenv("TINYREG_CACHE_DIR", str(reg / ".cache"))  # a planted cache inside the signed folder
    with pytest.raises(UsageError, match="never kept or loaded there"):
        trt_cache_dir(SHA, "10", "g", registry_root=reg)


def test_provider_plans(tmp_path: Path) -> None:
    reg = tmp_path / "reg"
    reg.mkdir()
    assert plan("cpu").providers == ["CPUExecutionProvider"]
    with pytest.raises(UsageError, match=r"no TensorRT provider.*tinyreg\[tensorrt\]"):
        plan("tensorrt", model_sha256=SHA, registry_root=reg, available=["CPUExecutionProvider"])
    with pytest.raises(UsageError, match="no CUDA provider"):
        plan("cuda", available=["CPUExecutionProvider"])
    with pytest.raises(UsageError, match="use cpu, cuda or tensorrt"):
        plan("rocm")
    have = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    p = plan("tensorrt", model_sha256=SHA, registry_root=reg, available=have, trt_version="10.9", gpu="H100",
             root=tmp_path / "cache")
    assert p.cache is not None and p.cache.is_dir() and stat.S_IMODE(p.cache.stat().st_mode) == 0o700
    (name, opts), (cuda, copts) = p.providers
    assert name == "TensorrtExecutionProvider" and cuda == "CUDAExecutionProvider" and copts == {"use_tf32": "0"}
    assert opts == trt_provider_options(p.cache) and opts["trt_engine_cache_path"] == opts["trt_timing_cache_path"] == str(p.cache)
    assert opts["trt_fp16_enable"] == "0" and opts["trt_engine_cache_enable"] == "1"
    assert not p.cache.is_relative_to(reg)
    with pytest.raises(UsageError, match="needs the graph's sha256"):
        plan("tensorrt", available=have)
    assert plan("cuda", available=have).providers == [("CUDAExecutionProvider", {"use_tf32": "0"})]


def test_scorer_refuses_tensorrt_here(fp16_master: Path) -> None:
    import onnxruntime as ort

    from registry.scoring.score import Scorer

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the TensorRT provider: the refusal is for machines without it")
    with pytest.raises(UsageError, match="no TensorRT provider"):
        Scorer(fp16_master.parent, "dists_vgg16", precision="fp16", provider="tensorrt")


def test_iobinding_runner_matches_plain_run() -> None:
    import onnxruntime as ort

    data = (REPO / "model" / "tiny" / "dists_vgg16.onnx").read_bytes()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    bound, plain = BoundRunner(sess, "cpu"), PlainRunner(sess)
    for _ in range(3):
        feeds = {"ref": rng.random((1, 3, 24, 32), np.float32), "dist": rng.random((1, 3, 24, 32), np.float32)}
        assert bound(feeds) == plain(feeds)
    assert bound.uploads == 6  # one upload per input per frame


def test_no_engine_is_read_from_the_registry_folder(fp16_master: Path, tmp_path: Path) -> None:
    """A planted TensorRT cache folder inside the registry is an unlisted file to verify, and never a cache root."""
    from registry.verify import verify_registry
    from tests.precision_factory import copy_registry

    reg = copy_registry(fp16_master, tmp_path / "tiny")
    planted = reg.parent / "trt" / SHA
    planted.mkdir(parents=True)
    (planted / "TensorrtExecutionProvider_TRTKernel_graph.engine").write_bytes(b"\x7fELF not an engine")
    rep = verify_registry(reg)
    assert any("engine" in f.message for f in rep.errors), rep.errors
    with pytest.raises(UsageError, match="inside the registry folder"):
        trt_cache_dir(SHA, "10", "g", registry_root=reg.parent, root=reg.parent)
    assert os.environ.get("TINYREG_CACHE_DIR") is None or not Path(os.environ["TINYREG_CACHE_DIR"]).is_relative_to(reg.parent)
