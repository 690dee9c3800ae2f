"""Read a dataset results file for people: per-pair frame curves, summaries, errors and the run record.

A reader, never a writer: it opens only a regular file under a size cap, accepts the JSON
Lines and CSV formats ``tinyreg score --manifest`` writes, takes a first ``run`` record if
there is one (``{"type": "run", "entry", "model_sha256", ...}``), ignores record types and
fields it does not know (counted in ``ignored``), and tolerates a torn last line (a run
killed mid-write). A line that is not a record is refused with its line number.
"""

from __future__ import annotations

import csv
import json
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import InputError

MAX_RESULTS_BYTES = 1 << 30  # 1 GiB: about 15 million frame records


@dataclass
class PairCurve:
    """One pair: its frames and scores (file order), its closing summary record or its error."""

    pair: str
    frames: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    error: str | None = None

    @property
    def closed(self) -> bool:
        return self.summary is not None or self.error is not None

    def restart(self) -> None:
        """Forget an earlier scoring of this pair: a resume scored it again (its inputs changed, or it failed)."""
        self.frames, self.scores, self.summary, self.error = [], [], None, None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.frames, np.int64), np.asarray(self.scores, np.float64)

    def worst(self, lower_is_better: bool | None) -> tuple[int, float] | None:
        """(frame, score) of the worst frame in the metric's direction (None when unknown or no finite score)."""
        if lower_is_better is None or not self.scores:
            return None
        x, y = self.arrays()
        bad = ~np.isnan(y)  # +inf is the worst distance there is; -inf the worst similarity
        if not bad.any():
            return None
        yy = np.where(bad, y, -np.inf if lower_is_better else np.inf)
        i = int(np.argmax(yy) if lower_is_better else np.argmin(yy))
        return int(x[i]), float(y[i])

    def stats(self) -> dict[str, float | int]:
        """frames, mean, p5, p50, p95, min, max over the finite scores; nan (count) of the others."""
        _, y = self.arrays()
        ok = y[np.isfinite(y)]
        out: dict[str, float | int] = {"frames": len(y), "nonfinite": int(len(y) - len(ok))}
        if len(ok):
            with np.errstate(over="ignore", invalid="ignore"):  # scores near the float limits: an infinite mean, said as such
                p5, p50, p95 = (float(v) for v in np.percentile(ok, [5, 50, 95]))
                out.update(mean=float(ok.mean()), p5=p5, p50=p50, p95=p95, min=float(ok.min()), max=float(ok.max()))
        return out


@dataclass
class ResultsDoc:
    path: str
    run: dict[str, Any] | None = None
    pairs: dict[str, PairCurve] = field(default_factory=dict)  # manifest order (first record of each pair)
    ignored: int = 0  # records of a type this reader does not know
    torn: bool = False  # the last line was cut off (a run killed mid-write)
    superseded: int = 0  # frame records of an earlier scoring of a pair that a resume scored again (not in any curve)

    def pair(self, name: str) -> PairCurve:
        if name not in self.pairs:
            self.pairs[name] = PairCurve(name)
        return self.pairs[name]

    @property
    def frames(self) -> int:
        """Frame records in the file (those of a pair's earlier, superseded scoring included)."""
        return sum(len(p.scores) for p in self.pairs.values()) + self.superseded

    @property
    def failed(self) -> list[PairCurve]:
        return [p for p in self.pairs.values() if p.error is not None]


def _lines(path: Path, cap: int) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, line, ends with a newline) of a regular file read under ``cap`` bytes, one line at a time."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > cap:
        os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: not a regular file")
        raise InputError(f"{path}: {st.st_size} bytes, over the {cap}-byte cap for a results file")
    with os.fdopen(fd, "rb") as f:
        seen = 0
        for n, line in enumerate(f, 1):
            seen += len(line)
            if seen > cap:
                raise InputError(f"{path}: over the {cap}-byte cap for a results file")
            yield n, line.rstrip(b"\n"), line.endswith(b"\n")


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError("not a number")
    return float(v)


def _csv_record(row: dict[str, str]) -> dict[str, Any]:
    if row.get("type") == "run" and (row.get("run") or "").startswith("{"):
        doc = json.loads(row["run"])  # a CSV file carries its run record as JSON in the run column
        if not isinstance(doc, dict):
            raise ValueError("run record is not an object")
        return {**doc, "type": "run"}
    rec: dict[str, Any] = {k: v for k, v in row.items() if v not in ("", None)}
    for k in ("frame", "frames"):
        if k in rec:
            rec[k] = int(rec[k])
    for k in ("score", "mean", "p5", "p50", "p95", "min", "max"):
        if k in rec:
            rec[k] = float(rec[k])
    return rec


def read_results(path: Path, *, cap: int = MAX_RESULTS_BYTES) -> ResultsDoc:
    """Read a results file (JSON Lines, or CSV when the name ends in .csv) into per-pair curves."""
    doc = ResultsDoc(str(path))
    is_csv = path.suffix.lower() == ".csv"
    header: list[str] | None = None
    for n, raw, complete in _lines(path, cap):
        if not complete:
            doc.torn = True  # no newline after the last line: a torn write, left out
            break
        try:
            line = raw.decode("utf-8")
            if not line.strip():
                continue
            if is_csv:
                cells = next(csv.reader([line]))
                if header is None:
                    if "type" not in cells or "pair" not in cells:
                        raise ValueError("no type/pair header")
                    header = cells
                    continue
                rec = _csv_record(dict(zip(header, cells, strict=False)))
            else:
                rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not an object")
            _take(doc, rec)
        except (ValueError, TypeError, KeyError, RecursionError, csv.Error) as exc:
            raise InputError(f"{path}:{n}: not a tinyreg results record ({' '.join(str(exc).split())[:200]})") from exc
    return doc


def _take(doc: ResultsDoc, rec: dict[str, Any]) -> None:
    kind = rec.get("type")
    if kind == "run":
        if doc.run is None:
            doc.run = rec
        return
    if kind not in ("frame", "pair", "error"):
        doc.ignored += 1
        return
    name = rec.get("pair")
    if not isinstance(name, str):
        raise ValueError("a record without a pair name")
    p = doc.pair(name)
    if p.closed and kind != "pair":  # records after a pair's closing record: a later scoring, which replaces the earlier
        doc.superseded += len(p.scores)
        p.restart()
    if kind == "frame":
        frame = rec.get("frame")
        if isinstance(frame, bool) or not isinstance(frame, int):
            raise ValueError("a frame record without an integer frame")
        score = _number(rec.get("score"))
        p.frames.append(frame)
        p.scores.append(score)
    elif kind == "pair":
        p.summary, p.error = rec, None
    else:
        p.error = str(rec.get("error", ""))


def finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
