"""``tinyreg score ENTRY_ID --manifest pairs.csv --out results.jsonl``: the dataset part of ``score``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from registry.cli import _output as out
from registry.errors import EXIT_FINDINGS, UsageError

SUMMARY_ROWS = 40


def score_manifest(path: Path, name: str, manifest: Path, results: Path | None, *, as_json: bool, **options: Any) -> None:
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
        report = score_dataset(path, name, manifest, results, opts,
                               on_start=lambda total: bar.update(task, total=total),
                               on_frames=lambda n: bar.advance(task, n))
    if report.smoke:
        out.warn(f"WARNING: '{report.entry}' is a SMOKE PLACEHOLDER with random weights; these scores mean nothing")
    failed = [r for r in report.summaries if r.get("type") == "error"]
    if as_json:
        out.emit({**report.as_json(), "failed": [{"pair": r["pair"], "error": r["error"]} for r in failed]}, ok=not failed)
    else:
        rows = [[str(r["pair"]), str(r.get("frames", "")), *(f"{float(r[k]):.6g}" for k in ("mean", "p5", "p50", "p95", "min")), ""]
                if r.get("type") == "pair" else [str(r["pair"]), "", "", "", "", "", "", str(r.get("error"))]
                for r in report.summaries]
        out.table(f"{report.entry}: {report.pairs} pairs -> {report.out}", ["pair", "frames", "mean", "p5", "p50", "p95", "min", "error"],
                  rows[:SUMMARY_ROWS])
        more = f" ({len(rows) - SUMMARY_ROWS} more rows in {report.out})" if len(rows) > SUMMARY_ROWS else ""
        out.line(f"{report.scored} pairs scored now ({report.frames} frames, {report.engine} engine, {report.workers} worker(s) x "
                 f"{report.threads} thread(s)), {report.skipped} done before, {len(failed)} failed{more}")
    if failed:
        out.warn(f"{len(failed)} pair(s) failed; their errors are in {report.out}")
        raise typer.Exit(EXIT_FINDINGS)
