"""Dataset runs: manifests, records, shards, resume after a kill, errors, engines, int8 and providers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from registry.errors import InputError, UsageError
from registry.media.video import Selection
from registry.scoring import engines
from registry.scoring.dataset import DatasetOptions, score_dataset
from registry.scoring.engines import check_int8, providers_for, split_cores
from registry.scoring.manifest import Shard, read_manifest
from registry.scoring.results import ResultsFile
from tests.conftest import REPO
from tests.video_factory import encode, write_y4m_planes, yuv_frames

N_PAIRS = 6


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A manifest of N_PAIRS video pairs (mkv and y4m, 3 frames each) plus a missing, a corrupt and a too short pair."""
    d = tmp_path / "data"
    (d / "clips").mkdir(parents=True)
    rows = ["ref,dist,pair"]
    for i in range(N_PAIRS):
        ref = yuv_frames(3, 32, 24, "yuv420p", seed=i)
        dist = yuv_frames(3, 32, 24, "yuv420p", seed=100 + i)
        if i % 2:
            encode(d / "clips" / f"r{i}.mkv", ref, "yuv420p")
            encode(d / "clips" / f"d{i}.mkv", dist, "yuv420p")
            rows.append(f"clips/r{i}.mkv,clips/d{i}.mkv,p{i}")
        else:
            write_y4m_planes(d / "clips" / f"r{i}.y4m", ref, "yuv420p")
            write_y4m_planes(d / "clips" / f"d{i}.y4m", dist, "yuv420p")
            rows.append(f"clips/r{i}.y4m,clips/d{i}.y4m,p{i}")
    (d / "clips" / "corrupt.mkv").write_bytes(b"\x1aE\xdf\xa3" + b"\x00garbage" * 64)
    rows.insert(3, "clips/r0.y4m,clips/missing.y4m,missing")
    rows.append("clips/r1.mkv,clips/corrupt.mkv,corrupt")
    write_y4m_planes(d / "clips" / "short.y4m", yuv_frames(2, 32, 24, "yuv420p", seed=50), "yuv420p")
    rows.append("clips/r0.y4m,clips/short.y4m,short")
    (d / "pairs.csv").write_text("\n".join(rows) + "\n")
    return d / "pairs.csv"


def records(path: Path) -> list[dict[str, object]]:
    """The pair records of a results file (the run record, first line of shard 0, left out)."""
    return [r for r in (json.loads(line) for line in path.read_text().splitlines()) if r["type"] != "run"]


def run(reg: Path, manifest: Path, out: Path, **kw: object) -> object:
    return score_dataset("dists_vgg16", manifest, out, DatasetOptions(**{"workers": 1, **kw}), registry=reg)  # type: ignore[arg-type]


def test_manifest_parsing(tmp_path: Path) -> None:
    m = tmp_path / "sub" / "m.csv"
    m.parent.mkdir()
    m.write_text("# a comment\nref,dist\na.mp4,b.mp4\n\n c.y4m , d.y4m ,named\n")
    specs = read_manifest(m)
    assert [(s.index, s.pair, s.ref.name, s.dist.name) for s in specs] == [(0, "b.mp4", "a.mp4", "b.mp4"), (1, "named", "c.y4m", "d.y4m")]
    assert specs[0].ref == m.parent / "a.mp4"
    m.write_text("a,b,x\nc,d,x\n")
    with pytest.raises(InputError, match="already on line 1"):
        read_manifest(m)
    m.write_text("only-one-field\n")
    with pytest.raises(InputError, match=r"m\.csv:1: expected ref,dist"):
        read_manifest(m)
    m.write_text("ref,dist\n")
    with pytest.raises(InputError, match="no pairs"):
        read_manifest(m)
    pairs = list(range(10))
    blocks = [Shard(i, 3).take(pairs) for i in range(3)]  # type: ignore[arg-type]
    assert [x for b in blocks for x in b] == pairs and [len(b) for b in blocks] == [3, 3, 4]
    for bad in ("3/3", "1", "a/b", "-1/2"):
        with pytest.raises(UsageError):
            Shard.parse(bad)


def test_records_errors_and_summary(reg_path: Path, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    rep = run(reg_path, dataset, out)
    recs = records(out)
    closing = [r for r in recs if r["type"] != "frame"]
    assert [r["pair"] for r in closing] == ["p0", "p1", "missing", "p2", "p3", "p4", "p5", "corrupt", "short"]
    errs = {r["pair"]: r["error"] for r in closing if r["type"] == "error"}
    assert set(errs) == {"missing", "corrupt", "short"} and "missing.y4m: no such file" in str(errs["missing"])
    assert "corrupt.mkv" in str(errs["corrupt"])
    assert "r0.y4m has 3 frames but" in str(errs["short"]) and "short.y4m has 2" in str(errs["short"])
    assert rep.errors == [{"pair": p, "error": errs[p]} for p in ("missing", "corrupt", "short")]  # type: ignore[attr-defined]
    for r in closing:
        if r["type"] == "pair":
            frames = [f for f in recs if f["type"] == "frame" and f["pair"] == r["pair"]]
            scores = np.array([f["score"] for f in frames])
            assert [f["frame"] for f in frames] == [0, 1, 2] and r["frames"] == 3
            assert r["mean"] == pytest.approx(scores.mean()) and r["min"] == scores.min()
            assert r["p50"] == pytest.approx(np.median(scores)) and r["p5"] <= r["p50"] <= r["p95"]
            assert set(r) == {"type", "pair", "frames", "mean", "p5", "p50", "p95", "min", "run", "inputs"}
    # the pixel cap reaches every worker: each pair is refused from its header, recorded, and the run goes on
    capped = tmp_path / "capped.jsonl"
    rep = run(reg_path, dataset, capped, max_pixels=500)
    assert rep.frames == 0 and len(rep.errors) == N_PAIRS + 3  # type: ignore[attr-defined]
    assert "32x24 is 0.0 Mpx, over the cap" in str(rep.errors[0]["error"])  # type: ignore[attr-defined]
    # frame selection reaches the records
    out2 = tmp_path / "sel.jsonl"
    run(reg_path, dataset, out2, selection=Selection(start=1, every=1, count=1))
    assert {r["frame"] for r in records(out2) if r["type"] == "frame"} == {1}


def test_shards_concatenate_to_the_full_result(reg_path: Path, dataset: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.jsonl"
    run(reg_path, dataset, full)
    parts = []
    for i in range(3):
        p = tmp_path / f"shard{i}.jsonl"
        run(reg_path, dataset, p, shard=Shard(i, 3))
        parts.append(p.read_bytes())
    assert b"".join(parts) == full.read_bytes()


def test_resume_after_kill_gives_the_full_result(reg_path: Path, dataset: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.jsonl"
    run(reg_path, dataset, full)
    data = full.read_bytes()
    lines = data.splitlines(keepends=True)
    # killed while writing: the records of p0, p1 and the missing pair landed, then one of p2's frames and a torn line
    cut = tmp_path / "cut.jsonl"
    end_p1 = next(i for i, ln in enumerate(lines) if b'"pair": "p1"' in ln and b'"type": "pair"' in ln) + 1
    cut.write_bytes(b"".join(lines[:end_p1 + 2]) + lines[end_p1 + 2][:17])
    rep = run(reg_path, dataset, cut)
    assert rep.skipped == 3 and rep.scored == N_PAIRS + 3 - 3  # type: ignore[attr-defined]
    assert cut.read_bytes() == data
    # a finished file: nothing to do, nothing appended
    rep = run(reg_path, dataset, cut)
    assert rep.scored == 0 and cut.read_bytes() == data  # type: ignore[attr-defined]
    # damage before the tail is refused, never appended to
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(lines[0] + b"{not json\n" + b"".join(lines[1:4]))
    with pytest.raises(InputError, match=r"bad\.jsonl:2"):
        run(reg_path, dataset, bad)
    # someone else's JSON Lines file is never truncated or appended to
    other = tmp_path / "other.jsonl"
    other.write_bytes(b'{"name": "a"}\n{"name": "b"}\n')
    with pytest.raises(InputError, match=r"other\.jsonl:1: not a tinyreg results record"):
        run(reg_path, dataset, other)
    assert other.read_bytes() == b'{"name": "a"}\n{"name": "b"}\n'
    other.write_bytes(b"notes without a newline")
    with pytest.raises(InputError, match="holds no tinyreg results record"):
        run(reg_path, dataset, other)
    # killed in the middle of the very first write: the torn line goes, the run starts over
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(lines[0][:25])
    run(reg_path, dataset, torn)
    assert torn.read_bytes() == data


def test_killed_process_resumes(reg_path: Path, dataset: Path, tmp_path: Path) -> None:
    """A real SIGKILL after the second pair: the rerun completes the file with no duplicate records."""
    full = tmp_path / "full.jsonl"
    run(reg_path, dataset, full)
    out = tmp_path / "killed.jsonl"
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from registry.scoring import results\n"
        "orig = results.ResultsFile.write\n"
        "def write(self, o):\n"
        "    orig(self, o)\n"
        "    if len(self.done) == 2: os.kill(os.getpid(), 9)\n"
        "results.ResultsFile.write = write\n"
        "from registry.scoring.dataset import DatasetOptions, score_dataset\n"
        f"score_dataset('dists_vgg16', Path({str(dataset)!r}), Path({str(out)!r}), DatasetOptions(workers=1),\n"
        f"              registry=Path({str(reg_path)!r}))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert p.returncode == -9, p.stderr
    assert [r["pair"] for r in records(out) if r["type"] != "frame"] == ["p0", "p1"]
    run(reg_path, dataset, out)
    assert out.read_bytes() == full.read_bytes()


def test_csv_format(reg_path: Path, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    run(reg_path, dataset, out, fmt="csv")
    rows = out.read_text().splitlines()
    assert rows[0] == "type,pair,frame,score,frames,mean,p5,p50,p95,min,error,run,inputs"
    assert rows[1].startswith("run,") and '""entry"":""dists_vgg16""' in rows[1]
    del rows[1]
    assert sum(r.startswith("frame,") for r in rows) == 3 * N_PAIRS and sum(r.startswith("error,") for r in rows) == 3
    jl = tmp_path / "r.jsonl"
    run(reg_path, dataset, jl)
    first = next(r for r in records(jl) if r["type"] == "frame")
    assert rows[1].split(",")[:4] == ["frame", "p0", "0", repr(first["score"])]
    rep = run(reg_path, dataset, out, fmt="csv")  # resumes: everything done
    assert rep.scored == 0  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="header differs"):
        ResultsFile(jl, "csv").open()


def test_csv_refuses_foreign_file(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="header differs"):
        ResultsFile(p, "csv").open()


@pytest.mark.slow  # starts a worker pool
def test_process_pool_equals_in_process(reg_path: Path, dataset: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    run(reg_path, dataset, one)
    ticks: list[int] = []
    rep = score_dataset("dists_vgg16", dataset, two, DatasetOptions(workers=2, cores=2), registry=reg_path, on_frames=ticks.append)
    assert rep.workers == 2 and rep.threads == 1
    assert two.read_bytes() == one.read_bytes()
    assert sum(ticks) == 3 * N_PAIRS


def test_int8_and_provider_refusals(reg_path: Path, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="has no int8 sibling"):
        run(reg_path, dataset, tmp_path / "x.jsonl", int8=True)
    with pytest.raises(UsageError, match="did not pass its gate"):
        check_int8({"id": "e", "int8_sha256": "0" * 64, "quant": {"gate": {"passed": False, "drop_ci95": [0, 0.1]}}})
    with pytest.raises(UsageError, match="no recorded gate"):
        check_int8({"id": "e", "int8_sha256": "0" * 64})
    check_int8({"id": "e", "int8_sha256": "0" * 64, "quant": {"gate": {"passed": True, "drop_ci95": [0, 0.001], "budget": 0.005}}})
    with pytest.raises(UsageError, match="not within its budget"):  # a record edited to passed, its statistics left
        check_int8({"id": "e", "int8_sha256": "0" * 64, "quant": {"gate": {"passed": True, "drop_ci95": [0, 0.1], "budget": 0.005}}})
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(UsageError, match="no CUDA provider"):
        run(reg_path, dataset, tmp_path / "x.jsonl", provider="cuda")
    with pytest.raises(UsageError, match="use cpu, cuda or tensorrt"):
        providers_for("tpu")
    assert not (tmp_path / "x.jsonl").exists()
    assert split_cores(0, 4) == (4, 1) and split_cores(1, 4) == (1, 4) and split_cores(3, 4) == (3, 1)


def test_int8_scores_with_the_gated_sibling(tmp_path: Path) -> None:
    """The shipped registry's DISTS has an int8 sibling whose gate passed: --int8 uses it, and its scores differ."""
    reg = REPO / "model" / "tiny" / "registry.json"
    d = tmp_path / "d"
    d.mkdir()
    write_y4m_planes(d / "r.y4m", yuv_frames(2, 32, 24, "yuv420p", seed=1), "yuv420p")
    write_y4m_planes(d / "d.y4m", yuv_frames(2, 32, 24, "yuv420p", seed=2), "yuv420p")
    (d / "m.csv").write_text("r.y4m,d.y4m,x\n")
    a = score_dataset("dists_vgg16", d / "m.csv", tmp_path / "fp32.jsonl", DatasetOptions(workers=1), registry=reg)
    b = score_dataset("dists_vgg16", d / "m.csv", tmp_path / "int8.jsonl", DatasetOptions(workers=1, int8=True), registry=reg)
    assert a.summaries[0]["frames"] == b.summaries[0]["frames"] == 2
    assert a.summaries[0]["mean"] != b.summaries[0]["mean"]
    assert abs(float(a.summaries[0]["mean"]) - float(b.summaries[0]["mean"])) < 0.05


@pytest.mark.slow  # two fresh interpreters scoring a dataset (the same failures in-process: test_records_errors_and_summary)
def test_cli_manifest_run(reg_path: Path, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400"}
    cmd = [sys.executable, "-m", "registry", "score", "dists_vgg16", "--manifest", str(dataset), "--out", str(out),
           "--registry", str(reg_path), "--workers", "1"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert p.returncode == 1, p.stderr
    assert "3 pair(s) failed" in p.stderr and "Traceback" not in p.stderr and "SMOKE PLACEHOLDER" in p.stderr
    assert "p5" in p.stdout and "missing.y4m: no such file" in p.stdout  # the summary table
    p = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env)
    doc = json.loads(p.stdout)
    assert p.returncode == 1 and doc["skipped"] == N_PAIRS + 3 and doc["scored"] == 0
    assert [f["pair"] for f in doc["failed"]] == ["missing", "corrupt", "short"]
    p = subprocess.run([*cmd, "--engine", "spark"], capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "'spark' is not one of 'local', 'ray'" in p.stderr  # an Enum choice: refused while parsing
    p = subprocess.run([*cmd[:-2], "--int8"], capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "no int8 sibling" in p.stderr


@pytest.mark.slow
def test_ray_engine_equals_local(reg_path: Path, dataset: Path, tmp_path: Path) -> None:
    """`tinyreg score --engine ray` (a local Ray of its own) writes the local engine's bytes and ends cleanly."""
    local, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    run(reg_path, dataset, local)
    p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", "--manifest", str(dataset), "--out",
                        str(ray_out), "--engine", "ray", "--workers", "2", "--registry", str(reg_path), "--json"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 1 and "3 pair(s) failed" in p.stderr, p.stderr[-3000:]  # the missing, corrupt, short pairs
    rep = json.loads(p.stdout)
    assert rep["engine"] == "ray" and rep["scored"] == N_PAIRS + 3, rep
    assert ray_out.read_bytes() == local.read_bytes()
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    assert "Token authentication" not in p.stderr and "Progress bars" not in p.stderr  # Ray's notices: its logs
    assert all(x.startswith("tinyreg: ") for x in p.stderr.splitlines()), p.stderr[-3000:]  # and its core's, too


def test_engine_names_checked_before_work(reg_path: Path, dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="engine"):
        run(reg_path, dataset, tmp_path / "x.jsonl", engine="spark")
    assert engines.ENGINES == ("local", "ray")


def test_bad_threads_variable_refused_before_work(reg_path: Path, dataset: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A dataset run splits the cores itself, yet a bad TINYREG_THREADS is refused (one line), not ignored."""
    monkeypatch.setenv("TINYREG_THREADS", "lots")
    with pytest.raises(UsageError, match="TINYREG_THREADS"):
        run(reg_path, dataset, tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()


def test_auto_workers_fit_memory(reg_path: Path, dataset: Path, tmp_path: Path) -> None:
    """--workers 0: one per core, but no more than the memory holds at the family's estimate for the largest frame."""
    from registry.families import get_family
    from registry.scoring.dataset import auto_workers

    per_1080p = get_family("dists").score_memory.estimate(1080, 1920)  # type: ignore[union-attr]
    assert auto_workers("dists", 16, (1080, 1920), int(per_1080p * 2.5)) == 2
    assert auto_workers("dists", 16, (1080, 1920), int(per_1080p * 0.5)) == 1
    assert auto_workers("dists", 4, (24, 32), 1 << 40) == 4 and auto_workers("dists", 4, None, 1 << 20) == 4
    per_small = get_family("dists").score_memory.estimate(24, 32)  # type: ignore[union-attr]
    rep = score_dataset("dists_vgg16", dataset, tmp_path / "a.jsonl",
                        DatasetOptions(workers=0, cores=2, max_memory=int(per_small * 1.5)), registry=reg_path)
    assert (rep.workers, rep.threads) == (1, 2)


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_failed_write_stops_the_engine_before_the_error_returns(
        reg_path: Path, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    """A write that fails (disk full) stops the engine before the error reaches the caller: the pool's pending
    pairs cancelled, Ray Data's iterator closed and ray.shutdown() run then, not whenever the suspended
    generator is collected (seen: Ray's atexit shutdown racing its threads, the CLI's exit 2 turned into 1)."""
    import errno

    from registry.scoring import dataset as ds

    closed: list[bool] = []

    def fake_engine(*args: object, **kw: object) -> object:
        try:
            for p in args[1]:  # type: ignore[attr-defined]
                yield engines.PairOutcome(p.pair, [(0, 0.5)])
        finally:
            closed.append(True)

    def full(self: ResultsFile, outcome: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ds, "run_local" if engine == "local" else "run_ray", fake_engine)
    monkeypatch.setattr(ResultsFile, "write", full)
    try:
        run(reg_path, dataset, tmp_path / "x.jsonl", engine=engine)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
        assert closed == [True]  # checked while the traceback (which holds the frames) is still alive
    else:
        pytest.fail("the write's OSError did not reach the caller")


def test_a_bad_ray_schedule_timeout_is_refused_by_the_ray_run_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    import registry.scoring.engines as engines

    monkeypatch.setenv("TINYREG_RAY_SCHEDULE_TIMEOUT", "soon")
    monkeypatch.delitem(sys.modules, "registry.scoring.engines")
    fresh = importlib.import_module("registry.scoring.engines")  # the local engine and every importer still work
    monkeypatch.setitem(sys.modules, "registry.scoring.engines", engines)
    with pytest.raises(UsageError, match="TINYREG_RAY_SCHEDULE_TIMEOUT"):
        fresh.ray_schedule_timeout()
    monkeypatch.setenv("TINYREG_RAY_SCHEDULE_TIMEOUT", "60")
    assert fresh.ray_schedule_timeout() == 60
