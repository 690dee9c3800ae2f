"""One precision switch: --precision fp32|fp16|int8 (and the --int8 alias) for image pairs, videos and datasets;
refusals for a missing sibling or a gate that did not pass; decode-ahead."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from registry.cli import app
from registry.errors import UsageError
from registry.scoring.dataset import DatasetOptions, score_dataset
from registry.scoring.prefetch import prefetch
from registry.scoring.score import score_images, score_videos
from registry.store.document import read_registry
from tests.conftest import REPO
from tests.precision_factory import edit_entry
from tests.video_factory import write_y4m_planes, yuv_frames

TINY = REPO / "model" / "tiny" / "registry.json"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def one_line(r: Result, code: int) -> str:
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyreg: ") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from registry.media.images import distort, natural_image, resize

    d = tmp_path_factory.mktemp("media")
    ref = resize(natural_image("chelsea"), 48, 64)
    dist = distort(ref, "blur", 0.8, np.random.default_rng(0))
    for name, arr in (("ref.png", ref), ("dist.png", dist)):
        Image.fromarray(np.clip(arr * 255 + 0.5, 0, 255).astype(np.uint8)).save(d / name)
    write_y4m_planes(d / "r.y4m", yuv_frames(3, 32, 24, "yuv420p", seed=1), "yuv420p")
    write_y4m_planes(d / "d.y4m", yuv_frames(3, 32, 24, "yuv420p", seed=2), "yuv420p")
    (d / "m.csv").write_text("r.y4m,d.y4m,x\n")
    return d


@pytest.mark.filterwarnings("ignore:.*SMOKE")
def test_image_pair_every_precision(fp16_master: Path, media: Path) -> None:
    e = read_registry(fp16_master).get("dists_vgg16")
    got = {}
    for p in ("fp32", "fp16", "int8"):
        r = invoke("score", "dists_vgg16", str(media / "ref.png"), str(media / "dist.png"), "--precision", p,
                   "--registry", str(fp16_master), "--json")
        assert r.exit_code == 0, r.stderr
        got[p] = json.loads(r.stdout)
    assert "precision" not in got["fp32"]  # an fp32 result reads as it always did
    assert got["fp16"]["precision"] == "fp16" and got["fp16"]["graph_sha256"] == e["fp16_sha256"]
    assert got["int8"]["graph_sha256"] == e["int8_sha256"]
    assert 0 < abs(got["fp16"]["score"] - got["fp32"]["score"]) < 1e-3
    alias = invoke("score", "dists_vgg16", str(media / "ref.png"), str(media / "dist.png"), "--int8", "--registry", str(fp16_master),
                   "--json")
    assert json.loads(alias.stdout) == got["int8"]  # --int8 is honoured for image pairs, as --precision int8
    lib = score_images("dists_vgg16", media / "ref.png", media / "dist.png", precision="fp16", registry=fp16_master)
    assert lib.scores == [got["fp16"]["score"]]


def test_refusals_are_one_line(fp16_reg: Path, media: Path) -> None:
    pair = (str(media / "ref.png"), str(media / "dist.png"))
    line = one_line(invoke("score", "dists_vgg16", *pair, "--precision", "fp16", "--registry", str(TINY)), 2)
    assert "has no fp16 sibling" in line and "tinyreg quantize dists_vgg16, mode fp16" in line
    line = one_line(invoke("score", "ssim_luma", *pair, "--precision", "int8", "--registry", str(TINY)), 2)
    assert "has no int8 sibling" in line
    assert "disagree" in one_line(invoke("score", "dists_vgg16", *pair, "--int8", "--precision", "fp16", "--registry",
                                         str(fp16_reg)), 2)
    edit_entry(fp16_reg, "dists_vgg16", lambda e: e["fp16"]["gate"].update(passed=False))
    assert "did not pass its gate" in one_line(invoke("score", "dists_vgg16", *pair, "--precision", "fp16", "--registry",
                                                      str(fp16_reg)), 2)
    assert "no TensorRT provider" in one_line(invoke("score", "dists_vgg16", *pair, "--provider", "tensorrt", "--registry",
                                                     str(fp16_reg)), 2)


@pytest.mark.filterwarnings("ignore:.*SMOKE")
def test_video_precision_and_decode_ahead(fp16_master: Path, media: Path) -> None:
    a = score_videos("dists_vgg16", media / "r.y4m", media / "d.y4m", registry=fp16_master)
    b = score_videos("dists_vgg16", media / "r.y4m", media / "d.y4m", precision="fp16", registry=fp16_master)
    c = score_videos("dists_vgg16", media / "r.y4m", media / "d.y4m", precision="fp16", decode_ahead=2, registry=fp16_master)
    assert len(a.scores) == len(b.scores) == 3 and b.scores == c.scores  # decoding ahead changes nothing but timing
    assert max(abs(x - y) for x, y in zip(a.scores, b.scores, strict=True)) < 1e-3 and a.scores != b.scores
    r = invoke("score", "dists_vgg16", "--ref", str(media / "r.y4m"), "--dist", str(media / "d.y4m"), "--precision", "fp16",
               "--registry", str(fp16_master), "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["precision"] == "fp16" and [f["score"] for f in doc["frames"]] == b.scores
    with pytest.raises(UsageError, match="has no fp16 sibling"):
        score_videos("dists_vgg16", media / "r.y4m", media / "d.y4m", precision="fp16", registry=TINY)


def test_dataset_precision(fp16_master: Path, media: Path, tmp_path: Path) -> None:
    a = score_dataset("dists_vgg16", media / "m.csv", tmp_path / "a.jsonl", DatasetOptions(workers=1), registry=fp16_master)
    b = score_dataset("dists_vgg16", media / "m.csv", tmp_path / "b.jsonl", DatasetOptions(workers=1, precision="fp16"),
                      registry=fp16_master)
    assert a.summaries[0]["frames"] == b.summaries[0]["frames"] == 3
    assert 0 < abs(float(a.summaries[0]["mean"]) - float(b.summaries[0]["mean"])) < 1e-3
    with pytest.raises(UsageError, match="has no fp16 sibling"):
        score_dataset("dists_vgg16", media / "m.csv", tmp_path / "c.jsonl", DatasetOptions(workers=1, precision="fp16"), registry=TINY)
    assert not (tmp_path / "c.jsonl").exists()  # refused before any work
    r = invoke("score", "dists_vgg16", "--manifest", str(media / "m.csv"), "--out", str(tmp_path / "d.jsonl"), "--precision",
               "fp16", "--workers", "1", "--registry", str(TINY))
    assert "has no fp16 sibling" in one_line(r, 2) and not (tmp_path / "d.jsonl").exists()


def test_prefetch_order_errors_and_bound() -> None:
    assert list(prefetch(range(50), 3)) == list(range(50))
    assert list(prefetch(iter([]), 2)) == []
    assert list(prefetch(range(5), 0)) == list(range(5))

    def failing() -> object:
        yield 1
        raise ValueError("truncated frame 2")

    it = prefetch(failing(), 2)
    assert next(it) == 1
    with pytest.raises(ValueError, match="truncated frame 2"):
        next(it)
    produced: list[int] = []

    def counted() -> object:
        for i in range(1000):
            produced.append(i)
            yield i

    it2 = prefetch(counted(), 2)
    assert next(it2) == 0
    time.sleep(0.3)
    assert len(produced) <= 2 + 2  # one handed out, at most `depth` queued, one waiting to be put
    before = threading.active_count()
    it2.close()  # the consumer stops: the decoder thread stops too
    time.sleep(0.3)
    assert threading.active_count() <= before - 1 and len(produced) < 10
