"""Result records of a dataset run and the resumable, append-only file they go to.

Records (JSON Lines, one object a line, keys sorted; or CSV with the same fields):
``{"type": "frame", "pair", "frame", "score"}`` for each scored frame, then
``{"type": "pair", "pair", "frames", "mean", "p5", "p50", "p95", "min"}``, or
``{"type": "error", "pair", "error"}`` for a pair that could not be scored.

A pair's records go to the file in one ``write`` followed by ``fsync``. On opening an
existing file, everything after the last complete ``pair``/``error`` record (a torn line,
frame records of a pair killed mid-write) is cut off; the pairs recorded before it are done.
Every complete line must be a record: a file that is not tinyreg's is refused, never cut.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import InputError, UsageError

FORMATS = ("jsonl", "csv")
CSV_FIELDS = ("type", "pair", "frame", "score", "frames", "mean", "p5", "p50", "p95", "min", "error")


@dataclass
class PairOutcome:
    """What scoring one pair produced: (frame index, score) for each frame, or an error."""

    pair: str
    scores: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None

    def records(self) -> list[dict[str, Any]]:
        if self.error is not None:
            return [{"type": "error", "pair": self.pair, "error": self.error}]
        out: list[dict[str, Any]] = [{"type": "frame", "pair": self.pair, "frame": i, "score": s} for i, s in self.scores]
        out.append({"type": "pair", "pair": self.pair, **summary([s for _, s in self.scores])})
        return out


def summary(scores: list[float]) -> dict[str, Any]:
    a = np.asarray(scores, np.float64)
    p5, p50, p95 = (float(v) for v in np.percentile(a, [5, 50, 95]))
    return {"frames": len(scores), "mean": float(a.mean()), "p5": p5, "p50": p50, "p95": p95, "min": float(a.min())}


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    return repr(v) if isinstance(v, float) else str(v)


def encode(records: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt == "jsonl":
        return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for r in records:
        w.writerow([_csv_cell(r.get(k)) for k in CSV_FIELDS])
    return buf.getvalue().encode()


def _decode(line: str, fmt: str) -> dict[str, Any]:
    if fmt == "jsonl":
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError("not an object")
        return obj
    row = next(csv.reader([line]))
    if len(row) != len(CSV_FIELDS):
        raise ValueError("wrong number of fields")
    return dict(zip(CSV_FIELDS, row, strict=True))


def fmt_for(path: Path, fmt: str | None) -> str:
    f = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    if f not in FORMATS:
        raise UsageError(f"format {f!r}: use jsonl or csv")
    return f


class ResultsFile:
    """An append-only results file that survives being killed: see the module docstring."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self.done: dict[str, dict[str, Any]] = {}  # pair -> its closing pair/error record
        self.dropped_bytes = 0
        self._fd = -1

    def open(self) -> ResultsFile:
        """Read what an earlier run finished, cut any torn tail, and open for appending."""
        header = ",".join(CSV_FIELDS) + "\n"
        try:
            from registry._internal.safeio import read_raw

            data = read_raw(self.path, "results")  # a FIFO or device is refused without blocking
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror})") from exc
        keep = 0
        pos = 0
        if self.fmt == "csv" and data:
            if not data.startswith(header.encode()):
                raise InputError(f"{self.path}: not a tinyreg CSV results file (header differs)")
            keep = pos = len(header)
        lineno = 1 if pos else 0
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # no newline: a torn tail
            lineno += 1
            try:
                rec = _decode(data[pos:nl].decode(), self.fmt)
                if rec.get("type") not in ("frame", "pair", "error") or not isinstance(rec.get("pair"), str):
                    raise ValueError("not a record")
            except (ValueError, UnicodeDecodeError) as exc:
                raise InputError(f"{self.path}:{lineno}: not a tinyreg results record; refusing to touch the file") from exc
            pos = nl + 1
            if rec.get("type") in ("pair", "error"):
                self.done[str(rec.get("pair"))] = rec
                keep = pos
        if data and pos == 0 and not data.startswith((b'{"frame', b'{"error"')):  # not a torn first write of ours
            raise InputError(f"{self.path}: holds no tinyreg results record; refusing to touch the file")
        self.dropped_bytes = len(data) - keep
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        try:
            self._fd = os.open(self.path, flags, 0o644)
            if self.dropped_bytes:
                os.ftruncate(self._fd, keep)
            if self.fmt == "csv" and keep == 0:
                os.ftruncate(self._fd, 0)
                self._append(header.encode())
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write ({exc.strerror})") from exc
        return self

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)

    def write(self, outcome: PairOutcome) -> None:
        """All of a pair's records in one append, then fsync."""
        recs = outcome.records()
        self._append(encode(recs, self.fmt))
        self.done[outcome.pair] = recs[-1]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ResultsFile:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
