"""The HTML reports: what they say, what they refuse, and that no registry or results text becomes markup."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InputError, UsageError
from registry.report import downsample, read_results
from registry.report.build import registry_report, results_report
from registry.report.html import CSP
from tests.conftest import REPO
from tests.report.factory import HOSTILE, curve, write_results

# what the page itself is made of: any other tag or any on* attribute came from the data
OUR_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "b", "code", "div", "span", "table",
            "thead", "tbody", "tr", "th", "td", "svg", "line", "text", "polyline", "circle", "rect"}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.csp: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        d = dict(attrs)
        if tag == "meta" and d.get("http-equiv") == "Content-Security-Policy":
            self.csp.append(str(d.get("content")))


def parse(page: str) -> Tags:
    t = Tags()
    t.feed(page)
    return t


def assert_inert(page: str) -> Tags:
    t = parse(page)
    assert set(t.tags) <= OUR_TAGS, set(t.tags) - OUR_TAGS
    assert not [a for a, _ in t.attrs if a.startswith("on")]
    assert not [v for a, v in t.attrs if a in ("href", "src", "xlink:href")]  # the page links to and loads nothing
    assert t.csp == [CSP]
    assert "\u202e" not in page and "\x1b" not in page and "\x00" not in page
    return t


def lower_run(**kw: object) -> dict[str, object]:
    return {"entry": "dists_vgg16", "family": "dists", "model_sha256": "ab" * 32, "provider": "cpu", **kw}


def test_results_report_reads_run_record_curves_and_errors(tmp_path: Path) -> None:
    res = write_results(tmp_path / "r.jsonl", {"a": curve(300, 1, spike=120), "b": curve(40, 2), "gone": "missing.y4m: no such file"},
                        run=lower_run(precision="fp32", options={"every": 2}, unknown_future={"x": 1}),
                        extra=[{"type": "checkpoint", "pair": "a", "note": "a record type from a newer tinyreg"}])
    w = results_report(res, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    t = assert_inert(page)
    assert (w.pairs, w.frames, w.failed, w.direction) == (3, 340, 1, "lower is better")
    assert t.tags.count("svg") == 3  # a curve per scored pair and the distribution across pairs
    assert "worst: frame 120 (0.9)" in page  # a lower-is-better metric's worst frame is its max
    assert "unknown_future" in page and "precision" in page and "ab" * 32 in page  # the run record, unknown fields too
    assert "1 records of an unknown type ignored" in page
    assert "missing.y4m: no such file" in page
    assert "3 pairs: 2 scored, 1 failed; 340 frames" in page


def test_higher_is_better_marks_the_min(tmp_path: Path) -> None:
    pts = [(i, 0.95 - (0.5 if i == 7 else 0.0)) for i in range(20)]
    res = write_results(tmp_path / "r.jsonl", {"a": pts}, run={"entry": "ssim_luma", "family": "ssim"})
    results_report(res, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "higher is better" in page and "worst: frame 7 (0.45)" in page and "worst frame (min)" in page


def test_direction_unknown_is_said_not_guessed(tmp_path: Path) -> None:
    res = write_results(tmp_path / "r.jsonl", {"a": curve(10)})  # an older file: no run record
    w = results_report(res, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert w.direction == "" and "direction of the metric is not known" in page and "worst: frame" not in page
    assert "has no run record" in page


def test_entry_direction_from_the_registry(reg_path: Path, tmp_path: Path) -> None:
    res = write_results(tmp_path / "r.jsonl", {"a": curve(10, spike=3)}, run={"entry": "dists_vgg16"})
    assert results_report(res, tmp_path / "r.html", registry=reg_path).direction == "lower is better"


def test_csv_results_and_torn_tail(tmp_path: Path) -> None:
    res = write_results(tmp_path / "r.csv", {"a": curve(12, spike=5), "b": "decode error"}, fmt="csv")
    doc = read_results(res)
    assert [p.pair for p in doc.pairs.values()] == ["a", "b"] and doc.pairs["a"].worst(True) == (5, 0.9)
    torn = tmp_path / "t.jsonl"
    write_results(torn, {"a": curve(3)})
    with torn.open("a") as f:
        f.write('{"type": "frame", "pair": "b", "fra')
    doc = read_results(torn)
    assert doc.torn and list(doc.pairs) == ["a"]


def test_not_a_results_file_is_refused_with_its_line(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    write_results(p, {"a": curve(3)})
    p.write_text(p.read_text() + "hello\n")
    with pytest.raises(InputError, match=r"r\.jsonl:5: not a tinyreg results record"):
        read_results(p)
    p.write_text('{"type": "frame", "pair": "a", "frame": "1", "score": 0.5}\n')
    with pytest.raises(InputError, match=":1:"):
        read_results(p)
    with pytest.raises(InputError, match="not a regular file"):
        read_results(tmp_path)
    with pytest.raises(InputError, match="cap"):
        read_results(p, cap=10)


def test_empty_results_file(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text("")
    w = results_report(p, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert w.pairs == 0 and "holds no pair yet" in page
    assert_inert(page)


def test_nan_and_inf_scores(tmp_path: Path) -> None:
    pts = [(0, 0.1), (1, float("nan")), (2, float("inf")), (3, 0.2), (4, float("-inf")), (5, 0.15)]
    p = tmp_path / "r.jsonl"
    write_results(p, {"odd": pts, "allnan": [(0, float("nan")), (1, float("nan"))]}, run=lower_run())
    w = results_report(p, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert_inert(page)
    assert w.frames == 8
    assert "worst: frame 2 (+inf)" in page  # +inf is the worst distance
    assert "3 non-finite scores" in page
    doc = read_results(p)
    assert doc.pairs["allnan"].worst(True) is None and doc.pairs["odd"].worst(False) == (4, -math.inf)
    assert "per-pair mean score, 1 pairs" in page  # the distribution counts finite means only
    for pts_attr in [v for a, v in parse(page).attrs if a == "points"]:
        assert "nan" not in str(pts_attr).lower() and "inf" not in str(pts_attr).lower()


def test_hostile_results_text_is_inert(tmp_path: Path) -> None:
    p = write_results(tmp_path / "r.jsonl", {HOSTILE + "x" * 10_000: curve(5), HOSTILE: HOSTILE},
                      run={"entry": HOSTILE, HOSTILE: HOSTILE, "options": {HOSTILE: [HOSTILE]}})
    results_report(p, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert_inert(page)
    assert "&lt;/script&gt;" in page and "\\u202e" in page and "\\x1b" in page  # shown, as visible text
    assert len(page) < 200_000  # a 10 000-character id is cut, with its length said
    assert "characters)" in page


def test_hundred_thousand_frames_stay_readable(tmp_path: Path) -> None:
    n = 100_000
    pts = curve(n, 3, spike=77_777)
    pts[12_345] = (12_345, -0.5)  # one very good frame: an extreme the curve keeps too
    p = write_results(tmp_path / "r.jsonl", {"long": pts}, run=lower_run())
    results_report(p, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    points = [v for a, v in parse(page).attrs if a == "points"]
    assert len(points) == 1 and len(str(points[0]).split()) <= 1500
    assert "worst: frame 77777 (0.9)" in page and "100000 frames" in page
    assert len(page) < 200_000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=False, width=32), min_size=1, max_size=3000),
       st.integers(min_value=4, max_value=400))
def test_downsample_keeps_extremes_and_order(ys: list[float], points: int) -> None:
    y = np.asarray(ys, np.float64)
    x = np.arange(len(y))
    dx, dy = downsample(x, y, points)
    finite = y[~np.isnan(y)]
    assert np.all(np.diff(dx) > 0)
    assert len(dx) <= points
    if len(finite):
        assert dy.max() == finite.max() and dy.min() == finite.min()
        assert np.array_equal(dy, y[dx])


def test_registry_report_hostile_registry(reg_path: Path, tmp_path: Path) -> None:
    doc = json.loads(reg_path.read_text())
    e = doc["models"][0]
    bad = dict(e, id=HOSTILE + "y" * 10_000, notes=HOSTILE, description=HOSTILE, license=HOSTILE,
               files=[dict(f, path=HOSTILE + f["path"]) for f in e["files"]],
               quant={"gate": {"drop": 0.5, "drop_ci95": [HOSTILE, 1], "budget": HOSTILE, "passed": HOSTILE, "mode": HOSTILE}},
               parity={"max_abs_diff": HOSTILE, "passed": True, "reference": HOSTILE})
    doc["models"].append(bad)
    reg_path.write_text(json.dumps(doc))
    before = sorted(p.name for p in reg_path.parent.iterdir())
    w = registry_report(reg_path, tmp_path / "reg.html")
    page = (tmp_path / "reg.html").read_text()
    assert_inert(page)
    assert w.entries == 2 and not w.ok and "verify: FAILED" in page
    assert sorted(p.name for p in reg_path.parent.iterdir()) == before  # a reader: the registry folder is unchanged
    assert "SMOKE PLACEHOLDER" in page and "no trust policy given" in page


def test_registry_report_gate_parity_and_pins(tmp_path: Path) -> None:
    import shutil

    reg = tmp_path / "tiny"
    shutil.copytree(REPO / "model" / "tiny", reg)
    registry_report(reg, tmp_path / "reg.html")
    page = (tmp_path / "reg.html").read_text()
    assert_inert(page)
    entry = next(e for e in json.loads((reg / "registry.json").read_text())["models"] if e["id"] == "dists_vgg16")
    g = entry["quant"]["gate"]
    assert f"drop = 1 - PLCC against fp32 on {g['samples']} samples = {g['drop']:.3g}" in page
    assert f"95% CI {g['drop_ci95'][0]:.3g}..{g['drop_ci95'][1]:.3g}" in page
    assert all(f["sha256"] in page for f in entry["files"])


def test_registry_report_refuses_to_write_into_the_registry(reg_path: Path) -> None:
    with pytest.raises(UsageError, match="inside the registry folder"):
        registry_report(reg_path, reg_path.parent / "report.html")
    assert not (reg_path.parent / "report.html").exists()


def tinyreg(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TINYREG_TRUST", None)
    return subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_cli_report(reg_path: Path, tmp_path: Path) -> None:
    res = write_results(tmp_path / "r.jsonl", {"a": curve(30, spike=4)}, run={"entry": "dists_vgg16"})
    p = tinyreg("report", str(res), "--out", str(tmp_path / "r.html"), "--registry", str(reg_path))
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"wrote {tmp_path / 'r.html'}: 1 pairs (0 failed), 30 frames; lower is better\n"
    from typer.testing import CliRunner

    from registry.cli import app

    r = CliRunner().invoke(app, ["report", str(res), "--out", str(tmp_path / "r2.html"), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["command"] == "report" and json.loads(r.stdout)["frames"] == 30
    r = CliRunner().invoke(app, ["report", "--registry", str(reg_path), "--out", str(tmp_path / "reg.html"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["entries"] == 1 and (tmp_path / "reg.html").is_file()
    # refused, one line, exit 2: no --out; --trust with a results file; a file that is not results; writing over the input
    for args in (["report", str(res)],
                 ["report", str(res), "--out", str(tmp_path / "x.html"), "--trust", str(tmp_path / "t.json")],
                 ["report", str(reg_path), "--out", str(tmp_path / "x.html")],
                 ["report", str(res), "--out", str(res)]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, (args, r.stderr)
    assert res.read_text().startswith('{"entry"')  # the results file is untouched


def test_cli_results_report_with_ambient_trust_env(tmp_path: Path) -> None:
    """TINYREG_TRUST in the environment is for verifying; it does not stop a results report (an explicit --trust does)."""
    import os

    res = write_results(tmp_path / "r.jsonl", {"a": curve(5)})
    env = {**os.environ, "PYTHONPATH": str(REPO), "TINYREG_TRUST": str(tmp_path / "policy.json")}
    p = subprocess.run([sys.executable, "-m", "registry", "report", str(res), "--out", str(tmp_path / "r.html")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr


@pytest.mark.slow
def test_quick_start_ends_with_the_report(reg_path: Path, tmp_path: Path) -> None:
    """score a small dataset from the command line, then report it: a row and a curve per pair, the failed pair's error."""
    from tests.video_factory import write_pairs_manifest

    manifest = write_pairs_manifest(tmp_path / "data", 2, 3, names="clip", broken="gone")
    res = tmp_path / "results.jsonl"
    p = tinyreg("score", "dists_vgg16", "--manifest", str(manifest), "--out", str(res), "--workers", "1",
                "--registry", str(reg_path))
    assert p.returncode == 1, p.stderr  # one pair failed
    assert "3 pairs: 2 scored now, 0 before, 1 failed; 6 frames" in p.stdout
    assert "worst (max)" in p.stdout and "lower is better" in p.stdout
    p = tinyreg("report", str(res), "--out", str(tmp_path / "report.html"), "--registry", str(reg_path))
    assert p.returncode == 0, p.stderr
    page = (tmp_path / "report.html").read_text()
    assert_inert(page)
    assert page.count("class=\"plot curve-plot\"") == 2 and "missing.y4m" in page


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["r.jsonl", "r.csv"]))
def test_reader_never_crashes_on_arbitrary_bytes(data: bytes, name: str) -> None:
    """Any bytes: a document or one InputError, never another exception (the reader is a parser of untrusted files)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(data)
        try:
            doc = read_results(p)
        except InputError:
            return
        for c in doc.pairs.values():
            assert len(c.frames) == len(c.scores)
            c.stats()
            c.worst(True)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.fixed_dictionaries({"type": st.sampled_from(["frame", "pair", "error", "run", "other"]),
                                       "pair": st.text(max_size=8), "frame": st.integers(-5, 10**6),
                                       "score": st.floats(allow_nan=True, allow_infinity=True)}), max_size=30))
def test_reader_takes_any_records_in_any_order(recs: list[dict[str, object]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "r.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in recs))
        doc = read_results(p)
        assert doc.frames == sum(1 for r in recs if r["type"] == "frame")
        assert doc.ignored == sum(1 for r in recs if r["type"] == "other")
        from registry.report.html import esc
        from registry.report.pages import Metric, results_html

        assert_inert(results_html(doc, Metric("t", "lower is better")))
        assert esc("<") == "&lt;"


def test_extreme_but_finite_scores_draw(tmp_path: Path) -> None:
    for pts in ([(0, -1.7e308), (1, 1.7e308), (2, 0.0)], [(0, 5e-324), (1, 5e-324)], [(0, 5.6e14)], [(0, 0.0), (1, 0.0)]):
        p = write_results(tmp_path / "r.jsonl", {"a": pts, "b": pts}, run=lower_run())
        results_report(p, tmp_path / "r.html")
        page = (tmp_path / "r.html").read_text()
        assert_inert(page)
        coords = [str(v) for a, v in parse(page).attrs if a in ("points", "cx", "cy", "x", "y", "width", "height")]
        assert not [c for c in coords if "nan" in c.lower() or "inf" in c.lower()], pts


def test_registry_report_under_a_trust_policy(tmp_path: Path) -> None:
    """Signed entries read 'verified' under the consumer's policy; a tampered row reads as the failure verify found."""
    from tests.factories import make_signed

    s = make_signed(tmp_path)
    registry_report(s.reg, tmp_path / "ok.html", trust=s.policy)
    page = (tmp_path / "ok.html").read_text()
    assert_inert(page)
    assert page.count("verified under the trust policy") >= 3 and "verify: OK" in page and "no trust policy given" not in page
    doc = json.loads(s.reg.read_text())
    doc["models"][0]["license"] = "tampered"
    s.reg.write_text(json.dumps(doc))
    w = registry_report(s.reg, tmp_path / "bad.html", trust=s.policy)
    page = (tmp_path / "bad.html").read_text()
    assert not w.ok and "verify: FAILED" in page
    eid = doc["models"][0]["id"]
    section = page.split(f"<h2>{eid}</h2>")[1].split("<h2>")[0]
    assert "<h3>Signature</h3><p class=\"bad\">" in section


def test_csv_run_record_in_its_run_column(tmp_path: Path) -> None:
    """The CSV format keeps the run record as JSON in a 'run' column (and closing records' run digests and inputs)."""
    p = tmp_path / "r.csv"
    run = {"tinyreg_results": 1, "entry": "dists_vgg16", "model_sha256": "ab" * 32, "int8": False}
    p.write_text("type,pair,frame,score,frames,mean,p5,p50,p95,min,error,run,inputs\n"
                 + "run,,,,,,,,,,,\"" + json.dumps(run).replace('"', '""') + "\",\n"
                 + "frame,a,0,0.25,,,,,,,,,\n"
                 + "pair,a,,,1,0.25,0.25,0.25,0.25,0.25,,0123456789abcdef,\"{\"\"ref\"\": {}}\"\n")
    doc = read_results(p)
    assert doc.run == {**run, "type": "run"} and doc.pairs["a"].scores == [0.25] and doc.pairs["a"].summary is not None


def test_placeholder_weights_are_said_on_the_page(reg_path: Path, tmp_path: Path) -> None:
    """The run's entry is a smoke placeholder in the registry (and the model digest is that entry's): the page says so."""
    sha = json.loads(reg_path.read_text())["models"][0]["sha256"]
    res = write_results(tmp_path / "r.jsonl", {"a": curve(5)}, run={"entry": "dists_vgg16", "model_sha256": sha})
    results_report(res, tmp_path / "r.html", registry=reg_path)
    assert "SMOKE PLACEHOLDER" in (tmp_path / "r.html").read_text()
    res = write_results(tmp_path / "r.jsonl", {"a": curve(5)}, run={"entry": "dists_vgg16", "model_sha256": "cd" * 32})
    results_report(res, tmp_path / "r.html", registry=reg_path)  # a model that is none of the entry's files ran
    assert "SMOKE PLACEHOLDER" not in (tmp_path / "r.html").read_text()


def test_run_record_values_in_json_words(tmp_path: Path) -> None:
    res = write_results(tmp_path / "r.jsonl", {"a": curve(3)}, run={"entry": "x", "int8": False, "max_memory": None, "n": 2})
    results_report(res, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert ">false<" in page and ">null<" in page and "False" not in page and "None" not in page


def test_a_pair_scored_again_shows_only_its_last_scoring(tmp_path: Path) -> None:
    """A resume re-scores a pair whose inputs changed or (--retry-errors) that failed, after its old records:
    the curve and the verdict are those of the last scoring, never old and new frames mixed."""
    recs = [
        {"type": "frame", "pair": "p0", "frame": 0, "score": 9.0},
        {"type": "frame", "pair": "p0", "frame": 1, "score": 9.0},
        {"type": "pair", "pair": "p0", "frames": 2, "mean": 9.0},
        {"type": "error", "pair": "p1", "error": "decoder crashed"},
        {"type": "frame", "pair": "p0", "frame": 0, "score": 0.1},
        {"type": "frame", "pair": "p0", "frame": 1, "score": 0.2},
        {"type": "pair", "pair": "p0", "frames": 2, "mean": 0.15},
        {"type": "frame", "pair": "p1", "frame": 0, "score": 0.3},
        {"type": "pair", "pair": "p1", "frames": 1, "mean": 0.3},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    doc = read_results(path)
    assert doc.pairs["p0"].scores == [0.1, 0.2] and doc.pairs["p0"].frames == [0, 1]
    assert doc.pairs["p0"].worst(True) == (1, 0.2)
    assert doc.pairs["p1"].error is None and doc.pairs["p1"].scores == [0.3]
    assert doc.failed == [] and doc.superseded == 2
