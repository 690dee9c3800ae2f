"""``tinyreg score ENTRY_ID --manifest pairs.csv --out results.jsonl``: the dataset part of ``score``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.cli import _output as out
from registry.cli._output import Result
from registry.errors import UsageError

SUMMARY_ROWS = 40


def score_manifest(path: Path, name: str, manifest: Path, results: Path | None, **options: Any) -> None:
    from registry.media.video import Scale, Selection
    from registry.scoring.dataset import DatasetOptions, score_dataset
    from registry.scoring.manifest import Shard

    if results is None:
        raise UsageError("--manifest needs --out FILE (JSON Lines, or CSV with --format csv)")
    fmt = options.pop("fmt")
    opts = DatasetOptions(
        fmt={"json": None, "jsonl": "jsonl", "csv": "csv"}.get(fmt, fmt), engine=options["engine"],
        workers=options["workers"], shard=Shard.parse(options["shard"]),
        selection=Selection(options["start"], options["frames"], options["every"]), scale=Scale.parse(options["scale"]),
        matrix=options["matrix"], precision=options["precision"], provider=options["provider"],
        ray_address=options["ray_address"], max_pixels=options["max_pixels"], max_memory=options["max_memory"],
        trust=options["trust"], retry_errors=options["retry_errors"])
    with out.rate_progress("scoring") as bar:
        task = bar.add_task("scoring", total=None)
        report = score_dataset(name, manifest, results, opts, registry=path,
                               on_start=lambda total: bar.update(task, total=total),
                               on_frames=lambda n: bar.advance(task, n))
    out.render(dataset_result(report, _direction(path, report.entry)))


def _direction(path: Path, entry_id: str) -> str:
    """The metric's direction from the entry's family ('' when the family cannot be named)."""
    from registry.families import get_family
    from registry.store.document import read_registry

    try:
        return get_family(str(read_registry(path).get(entry_id).get("family"))).meta.direction.value
    except Exception:  # the run is done; an unknown direction only leaves the worst-frame column out
        return ""


def dataset_result(report: Any, direction: str) -> Result:
    """The run for people: one row per pair with its worst frame in the metric's direction, and counts that add up."""
    from registry.cli._text import arrow, count_words, worst_of
    from registry.report.results import read_results

    failed = [r for r in report.summaries if r.get("type") == "error"]
    failed_now = len(report.errors)
    res = Result({**report.as_json(), "failed": [{"pair": r["pair"], "error": r["error"]} for r in failed]}, ok=not failed)
    if report.smoke:
        res.warnings.append(f"WARNING: '{report.entry}' is a SMOKE PLACEHOLDER with random weights; these scores mean nothing")
    curves = {}
    try:
        curves = read_results(Path(report.out)).pairs
    except Exception as exc:  # the summary still has the pair records; only the worst frames are left out
        res.warnings.append(f"cannot read {report.out} back for the worst frames: {exc}")
    lower = direction.startswith("lower") if direction else None
    stat = worst_of(direction) if direction else "worst"
    rows = []
    for r in report.summaries:
        if r.get("type") != "pair":
            rows.append([str(r["pair"]), "", "", "", "", "", "", "", str(r.get("error"))])
            continue
        c = curves.get(str(r["pair"]))
        w = c.worst(lower) if c is not None else None
        rows.append([str(r["pair"]), str(r.get("frames", "")),
                     *(out.num(float(r[k]), 6) if k in r else "-" for k in ("mean", "p5", "p50", "p95")),
                     out.num(w[1], 6) if w else "-", str(w[0]) if w else "-", ""])
    title = f"{report.entry}: {report.pairs} pairs -> {report.out}"
    if direction:
        title += f" ({direction} {arrow(direction)}; the worst frame is the {stat})"
    res.table(title, ["pair", "frames", "mean", "p5", "p50", "p95", f"worst ({stat})", "at frame", "error"],
              rows[:SUMMARY_ROWS], wrap={8})
    if len(rows) > SUMMARY_ROWS:
        res.line(f"({len(rows) - SUMMARY_ROWS} more pairs in {report.out})")
    scored_ok = report.scored - failed_now
    failed_before = len(failed) - failed_now
    before = f"before ({failed_before} of them failed)" if failed_before > 0 else "before"
    res.line(count_words(report.pairs, [(scored_ok, "scored now"), (report.skipped, before), (failed_now, "failed")])
             + f"; {report.frames} frames, {report.engine} engine, {report.workers} worker(s) x {report.threads} thread(s)")
    if failed:
        res.warnings.append(f"{len(failed)} pair(s) failed; their errors are in {report.out}")
    return res
