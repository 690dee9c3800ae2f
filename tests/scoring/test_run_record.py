"""Results know their model and their inputs: the run record, resume rules, input fingerprints, the record schema."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InputError, IntegrityError, UsageError
from registry.export.smoke import add_smoke
from registry.media.video import Selection
from registry.scoring.dataset import DatasetOptions, score_dataset
from registry.scoring.manifest import Shard
from registry.scoring.results import PairOutcome, ResultsFile, encode
from tests.factories import invoke_cli as cli
from tests.video_factory import write_pairs_manifest, write_y4m_planes, yuv_frames


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    return write_pairs_manifest(tmp_path / "data", 3, 2, broken="broken", missing="gone.y4m")


def run(reg: Path, manifest: Path, out: Path, entry: str = "dists_vgg16", **kw: object) -> object:
    return score_dataset(entry, manifest, out, DatasetOptions(**{"workers": 1, **kw}), registry=reg)  # type: ignore[arg-type]


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_first_line_is_the_run_record(reg_path: Path, pairs: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    run(reg_path, pairs, out)
    first = lines(out)[0]
    entry = json.loads(reg_path.read_text())["models"][0]
    assert first["type"] == "run" and first["entry"] == "dists_vgg16" and first["model_sha256"] == entry["sha256"]
    assert first["family"] == "dists"  # a report without the registry still knows the metric and its direction
    assert {"provider", "tinyreg", "int8", "matrix", "selection", "scale", "max_pixels", "max_memory"} <= set(first)
    closing = [r for r in lines(out) if r["type"] in ("pair", "error")]
    assert len({r["run"] for r in closing}) == 1
    assert all(set(r["inputs"]) == {"ref", "dist"} for r in closing)  # type: ignore[arg-type]


def test_resume_refuses_another_entry_or_other_options(reg_path: Path, pairs: Path, tmp_path: Path) -> None:
    """The attack: the same --out resumed with another model or other options used to append, exit 0."""
    add_smoke(reg_path, "lpips")
    out = tmp_path / "r.jsonl"
    run(reg_path, pairs, out)
    before = out.read_bytes()
    with pytest.raises(UsageError, match="another run: entry"):
        run(reg_path, pairs, out, entry="lpips_vgg16")
    with pytest.raises(UsageError, match="another run: selection"):
        run(reg_path, pairs, out, selection=Selection(every=2))
    with pytest.raises(UsageError, match="another run: max_pixels"):
        run(reg_path, pairs, out, max_pixels=10_000)
    assert out.read_bytes() == before
    code, _, err = cli("score", "lpips_vgg16", "--manifest", str(pairs), "--out", str(out), "--registry", str(reg_path))
    assert code == 2 and err.strip().count("\n") == 0 and "entry" in err, err


def test_a_later_shard_names_its_run_by_digest(reg_path: Path, pairs: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole.jsonl"
    run(reg_path, pairs, whole)
    shards = [tmp_path / f"s{i}.jsonl" for i in range(2)]
    for i, p in enumerate(shards):
        run(reg_path, pairs, p, shard=Shard(i, 2))
    assert b"".join(p.read_bytes() for p in shards) == whole.read_bytes()  # concatenation is one run's output
    assert '"type": "run"' not in shards[1].read_text()
    with pytest.raises(UsageError, match="another run"):
        run(reg_path, pairs, shards[1], shard=Shard(1, 2), selection=Selection(start=1))
    with pytest.raises(UsageError, match="later shard writes its own file"):
        run(reg_path, pairs, shards[0], shard=Shard(1, 2))


def test_changed_input_under_the_same_pair_name_is_scored_again(reg_path: Path, pairs: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    run(reg_path, pairs, out)
    d1 = pairs.parent / "d1.y4m"
    old = [r for r in lines(out) if r.get("pair") == "p1" and r["type"] == "pair"][-1]
    os.utime(d1, ns=(1, 1))  # touched, same bytes: still done (the content decides)
    assert run(reg_path, pairs, out).scored == 0  # type: ignore[attr-defined]
    write_y4m_planes(d1, yuv_frames(2, 32, 24, "yuv420p", seed=99), "yuv420p")  # same size, new content
    rep = run(reg_path, pairs, out)
    assert rep.scored == 1 and [s["pair"] for s in rep.summaries] == ["p0", "p1", "p2", "broken"]  # type: ignore[attr-defined]
    # changed again, and its mtime set back to the recorded one: the ctime still tells, the content decides
    mid = [r for r in lines(out) if r.get("pair") == "p1" and r["type"] == "pair"][-1]
    write_y4m_planes(d1, yuv_frames(2, 32, 24, "yuv420p", seed=98), "yuv420p")
    recorded = mid["inputs"]["dist"]["mtime_ns"]  # type: ignore[index]
    os.utime(d1, ns=(recorded, recorded))
    assert run(reg_path, pairs, out).scored == 1  # type: ignore[attr-defined]
    new = [r for r in lines(out) if r.get("pair") == "p1" and r["type"] == "pair"][-1]
    assert new["inputs"]["dist"]["sha256"] != old["inputs"]["dist"]["sha256"]  # type: ignore[index]
    assert new["mean"] != old["mean"]
    # the missing file appears: that error pair is scored again too
    write_y4m_planes(pairs.parent / "gone.y4m", yuv_frames(2, 32, 24, "yuv420p", seed=7), "yuv420p")
    rep = run(reg_path, pairs, out)
    assert rep.scored == 1 and rep.summaries[-1]["type"] == "pair"  # type: ignore[attr-defined]


def test_retry_errors(reg_path: Path, pairs: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    assert len(run(reg_path, pairs, out).errors) == 1  # type: ignore[attr-defined]
    assert run(reg_path, pairs, out).scored == 0  # type: ignore[attr-defined]
    rep = run(reg_path, pairs, out, retry_errors=True)
    assert rep.scored == 1 and rep.errors[0]["pair"] == "broken"  # type: ignore[attr-defined]
    code, _, _ = cli("score", "dists_vgg16", "--manifest", str(pairs), "--out", str(out), "--registry", str(reg_path),
                     "--retry-errors", "--workers", "1")
    assert code == 1  # still an error, rescored, reported


BAD_LINES = {
    "deep JSON": "[" * 100_000 + "]" * 100_000,
    "pair without statistics": json.dumps({"type": "pair", "pair": "p0", "frames": 2, "run": "x", "inputs": {}}),
    "mean null": json.dumps({"type": "pair", "pair": "p0", "frames": 2, "mean": None, "p5": 0, "p50": 0, "p95": 0, "min": 0,
                             "run": "x", "inputs": {}}),
    "error without error": json.dumps({"type": "error", "pair": "p0", "run": "x", "inputs": {}}),
    "frame score NaN": '{"frame": 0, "pair": "p0", "score": NaN, "type": "frame"}',
    "duplicate keys": '{"frame": 0, "frame": 1, "pair": "p0", "score": 0.5, "type": "frame"}',
}


@pytest.mark.parametrize("what", sorted(BAD_LINES))
def test_bad_results_lines_are_bad_input_never_a_crash(reg_path: Path, pairs: Path, tmp_path: Path, what: str) -> None:
    out = tmp_path / "r.jsonl"
    out.write_text(BAD_LINES[what] + "\n")
    before = out.read_bytes()
    with pytest.raises(InputError, match="not a tinyreg results record"):
        ResultsFile(out, "jsonl").open()
    code, _, err = cli("score", "dists_vgg16", "--manifest", str(pairs), "--out", str(out), "--registry", str(reg_path))
    assert code == 2 and err.strip().count("\n") == 0, (code, err)
    assert out.read_bytes() == before


def test_csv_results_field_over_the_cap_or_malformed(reg_path: Path, pairs: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    run(reg_path, pairs, out, fmt="csv")
    good = out.read_bytes()
    for tail in (b'error,p9,,,,,,,,,"' + b"x" * 200_000 + b'",r,{}\n', b'frame,p0,"0,0.5\n', b"x" * (2 << 20) + b"\n"):
        out.write_bytes(good + tail)
        with pytest.raises(InputError, match="not a tinyreg results record"):
            ResultsFile(out, "csv").open()
        code, _, err = cli("score", "dists_vgg16", "--manifest", str(pairs), "--out", str(out), "--registry", str(reg_path),
                           "--format", "csv")
        assert code == 2 and err.strip().count("\n") == 0, (code, err)


_RUN = {"tinyreg_results": 1, "entry": "e", "model_sha256": "a" * 64, "provider": "cpu"}


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=400), fmt=st.sampled_from(["jsonl", "csv"]))
def test_any_results_bytes_open_or_are_refused_as_bad_input(tmp_path_factory: pytest.TempPathFactory, body: bytes, fmt: str) -> None:
    """Property: whatever the file holds, opening it either works or is InputError/UsageError, and a refusal leaves it alone."""
    p = tmp_path_factory.mktemp("fuzz") / f"r.{fmt}"
    p.write_bytes(body)
    try:
        ResultsFile(p, fmt, _RUN).open().close()
    except (InputError, UsageError):
        assert p.read_bytes() == body


@settings(max_examples=100, deadline=None)
@given(pairs=st.lists(st.tuples(st.text(min_size=1, max_size=12).filter(lambda s: "\n" not in s and "\r" not in s),
                                st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=4),
                                st.one_of(st.none(), st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s))),
                      max_size=5, unique_by=lambda t: t[0]),
       fmt=st.sampled_from(["jsonl", "csv"]))
def test_what_tinyreg_writes_it_reads_back(tmp_path_factory: pytest.TempPathFactory, pairs: list[Any], fmt: str) -> None:
    p = tmp_path_factory.mktemp("rt") / f"r.{fmt}"
    inputs = {"ref": {"path": "a", "size": 1, "sha256": "b" * 64}, "dist": {"path": "b", "error": "missing"}}
    with ResultsFile(p, fmt, _RUN) as f:
        for name, scores, err in pairs:
            f.write(PairOutcome(name, [] if err is not None else list(enumerate(scores)), err, inputs))
    again = ResultsFile(p, fmt, _RUN).open()
    again.close()
    assert set(again.done) == {n for n, _, _ in pairs}
    for name, scores, err in pairs:
        rec = again.done[name]
        assert rec["inputs"] == inputs
        if err is not None:
            assert rec["type"] == "error" and rec["error"] == err
        elif rec["type"] == "pair":
            assert rec["frames"] == len(scores)
        else:  # only where the statistics overflow: recorded as an error, the file stays readable
            assert "not finite" in str(rec["error"])
    assert encode([], fmt) == b""


def test_non_finite_scores_make_an_error_record_not_an_unreadable_file(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    with ResultsFile(p, "jsonl", _RUN) as f:
        f.write(PairOutcome("nan", [(0, 0.5), (1, float("nan"))], None, {}))
        f.write(PairOutcome("big", [(0, 1.7e308), (1, 1.7e308)], None, {}))
    again = ResultsFile(p, "jsonl", _RUN).open()
    again.close()
    assert again.done["nan"]["error"] == "the model gave a non-finite score at frame 1"
    assert "overflow" in again.done["big"]["error"]


def test_worker_that_finds_another_model_than_the_driver_recorded_fails(reg_path: Path, tmp_path: Path) -> None:
    """The run record names the model the driver verified; a worker (a Ray node whose checkout at the same path
    is another commit, or a folder changed mid-run) that would load other bytes for that entry must fail, never
    score them under the driver's model_sha256."""
    import dataclasses
    import hashlib
    import shutil

    from registry.scoring.dataset import prepare
    from registry.scoring.engines import PairWorker

    add_smoke(reg_path, "lpips")
    cfg, _, model_sha = prepare(reg_path, "dists_vgg16", DatasetOptions(workers=1))
    assert cfg.model_sha256 == model_sha
    other = tmp_path / "node2" / "model" / "tiny"
    shutil.copytree(reg_path.parent, other)
    evil = (other / "lpips_vgg16.onnx").read_bytes()
    (other / "dists_vgg16.onnx").write_bytes(evil)  # the same entry id, consistently pinned to other bytes
    doc = json.loads((other / "registry.json").read_text())
    row = next(m for m in doc["models"] if m["id"] == "dists_vgg16")
    row["sha256"] = hashlib.sha256(evil).hexdigest()
    for f in row.get("files") or []:
        if f.get("path") == "dists_vgg16.onnx":
            f.update(sha256=row["sha256"], size=len(evil))
    (other / "registry.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    PairWorker(cfg)  # the driver's own folder: fine
    with pytest.raises(IntegrityError, match="not the model this run"):
        PairWorker(dataclasses.replace(cfg, registry=str(other / "registry.json")))


@pytest.mark.parametrize("body", [b'{"error": "rate limited", "status": 429}', b'{"entry": "x", "notes": "mine"}'])
def test_someone_elses_json_without_a_newline_is_never_cut(reg_path: Path, pairs: Path, tmp_path: Path, body: bytes) -> None:
    """``--out`` names a file that holds a complete JSON document with no trailing newline (curl's output of an API
    answer): it starts like a tinyreg record, but it is not a torn first write of ours, so it is refused, not cut."""
    out = tmp_path / "answer.json"
    out.write_bytes(body)
    with pytest.raises(InputError, match="not a tinyreg results"):
        run(reg_path, pairs, out, fmt="jsonl")
    assert out.read_bytes() == body
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(b'{"entry": "dists_vgg16", "int8": fal')  # what a kill mid-write leaves: cut and rewritten
    run(reg_path, pairs, torn, fmt="jsonl")
    assert json.loads(torn.read_bytes().splitlines()[0])["type"] == "run"
