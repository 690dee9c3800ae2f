"""Result records of a dataset run and the resumable, append-only file they go to.

Records (JSON Lines, one object a line, keys sorted; or CSV with the same fields as columns):

* ``{"type": "run", "tinyreg_results": 1, "entry", "model_sha256", "tinyreg", ...}``: the run record,
  first line of the file (shard 0 and unsharded runs only, so that shard outputs 0..N-1
  concatenated are byte for byte one run's output): the entry, the sha256 of the model file
  actually run (fp32 or int8 sibling), the provider, the tinyreg version and every option that
  changes scores (``RunRecord``);
* ``{"type": "frame", "pair", "frame", "score"}`` for each scored frame, then
* ``{"type": "pair", "pair", "frames", "mean", "p5", "p50", "p95", "min", "run", "inputs"}``, or
* ``{"type": "error", "pair", "error", "run", "inputs"}`` for a pair that could not be scored.

``run`` on a closing record is the digest of the run record (so a shard file after the first,
which carries no run record, still names its run); ``inputs`` is the fingerprint of the two
input files (``fingerprint``: path, size, mtime and sha256).

A pair's records go to the file in one ``write`` followed by ``fsync``. On opening an
existing file, everything after the last complete record that closes something (a torn line,
frame records of a pair killed mid-write) is cut off. Every complete line must be a valid
record (the strict JSON reader, then the record schema): a file that is not tinyreg's, or
not one of this run's, is refused (exit 2, one line), never cut or appended to.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from registry._internal.hashing import hash_stream
from registry.errors import InputError, UsageError

FORMATS = ("jsonl", "csv")
RESULTS_VERSION = 1
CSV_FIELDS = ("type", "pair", "frame", "score", "frames", "mean", "p5", "p50", "p95", "min", "error", "run", "inputs")
MAX_LINE = 1 << 20  # a record line longer than this is not one tinyreg wrote
STATS = ("mean", "p5", "p50", "p95", "min")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def run_digest(run: dict[str, Any]) -> str:
    """The short name of a run record that every closing record carries."""
    return hashlib.sha256(json.dumps(run, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _side(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"path": str(path)}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        out["error"] = exc.strerror or "unreadable"
        return out
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            out["error"] = "not a regular file"
            return out
        out.update(size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns,
                   sha256=hash_stream(functools.partial(os.read, fd)).sha256)
        return out
    finally:
        os.close(fd)


def fingerprint(ref: Path, dist: Path) -> dict[str, Any]:
    """What a pair was scored from: for each file its path, size, mtime, ctime and sha256 (or why it could not be read).

    The content digest decides (one extra read of each file, cheap next to decoding it); size, mtime
    and ctime (which nobody can set back) let a resume skip re-hashing files nobody touched.
    """
    return {"ref": _side(ref), "dist": _side(dist)}


def _same_side(old: Any, path: Path) -> bool:
    if not isinstance(old, dict):
        return False
    try:
        st = os.stat(path)
    except OSError:
        return "error" in old and "sha256" not in old  # still unreadable: the recorded error stands
    if not stat.S_ISREG(st.st_mode) or "sha256" not in old:
        return False
    if old.get("size") != st.st_size:
        return False
    if old.get("mtime_ns") == st.st_mtime_ns and old.get("ctime_ns") == st.st_ctime_ns:
        return True  # untouched since it was hashed (ctime cannot be set back by hand, mtime can)
    return bool(_side(path).get("sha256") == old.get("sha256"))  # touched: the content decides


def same_inputs(record: dict[str, Any], ref: Path, dist: Path) -> bool:
    """Whether the files a pair was recorded from are still the ones at ``ref`` and ``dist``."""
    inputs = record.get("inputs")
    return isinstance(inputs, dict) and _same_side(inputs.get("ref"), ref) and _same_side(inputs.get("dist"), dist)


@dataclass
class PairOutcome:
    """What scoring one pair produced: (frame index, score) for each frame, or an error; and its input fingerprint."""

    pair: str
    scores: list[tuple[int, float]] = field(default_factory=list)
    error: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)

    def records(self, run: str) -> list[dict[str, Any]]:
        error = self.error
        stats: dict[str, Any] = {}
        if error is None:
            bad = next((i for i, s in self.scores if not math.isfinite(s)), None)
            if bad is not None:  # NaN/inf is not JSON, and no score: the pair is an error, the file stays readable
                error = f"the model gave a non-finite score at frame {bad}"
            else:
                stats = summary([s for _, s in self.scores])
                if not all(math.isfinite(stats[k]) for k in STATS):
                    error = "the statistics of the scores are not finite (overflow)"
        if error is not None:
            return [{"type": "error", "pair": self.pair, "error": error, "run": run, "inputs": self.inputs}]
        out: list[dict[str, Any]] = [{"type": "frame", "pair": self.pair, "frame": i, "score": s} for i, s in self.scores]
        out.append({"type": "pair", "pair": self.pair, **stats, "run": run, "inputs": self.inputs})
        return out


def summary(scores: list[float]) -> dict[str, Any]:
    a = np.asarray(scores, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        p5, p50, p95 = (float(v) for v in np.percentile(a, [5, 50, 95]))
        mean = float(a.mean())
    return {"frames": len(scores), "mean": mean, "p5": p5, "p50": p50, "p95": p95, "min": float(a.min())}


def _csv_cell(k: str, r: dict[str, Any]) -> str:
    v = r.get(k)
    if r.get("type") == "run" and k == "run":
        v = {x: y for x, y in r.items() if x != "type"}
    if v is None:
        return ""
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True, separators=(",", ":"))
    return repr(v) if isinstance(v, float) else str(v)


def encode(records: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt == "jsonl":
        return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for r in records:
        w.writerow([_csv_cell(k, r) for k in CSV_FIELDS])
    return buf.getvalue().encode()


# ---------------------------------------------------------------- reading: the strict reader, then the schema


def _number(rec: dict[str, Any], key: str) -> float:
    v = rec.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{key} must be a finite number, got {str(v)[:20]!r}")
    return float(v)


def _count(rec: dict[str, Any], key: str, least: int) -> int:
    v = rec.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < least:
        raise ValueError(f"{key} must be an integer >= {least}, got {str(v)[:20]!r}")
    return v


def check_record(rec: Any) -> dict[str, Any]:
    """``rec`` if it is a tinyreg results record; ValueError naming what is wrong otherwise."""
    if not isinstance(rec, dict):
        raise ValueError("not an object")
    kind = rec.get("type")
    if kind == "run":
        if rec.get("tinyreg_results") != RESULTS_VERSION:
            got = str(rec.get("tinyreg_results"))[:10]
            raise ValueError(f"run record of results version {got!r} (this tinyreg writes {RESULTS_VERSION})")
        if not isinstance(rec.get("entry"), str) or not isinstance(rec.get("model_sha256"), str) \
                or not _HEX64.fullmatch(rec["model_sha256"]):
            raise ValueError("a run record needs entry and model_sha256")
        return rec
    if not isinstance(rec.get("pair"), str):
        raise ValueError("a record needs a pair name")
    if kind == "frame":
        _count(rec, "frame", 0)
        _number(rec, "score")
        return rec
    if kind not in ("pair", "error"):
        raise ValueError(f"unknown record type {str(kind)[:20]!r}")
    if kind == "pair":
        _count(rec, "frames", 1)
        for k in STATS:
            _number(rec, k)
    elif not isinstance(rec.get("error"), str):
        raise ValueError("an error record needs its error text")
    if not isinstance(rec.get("run"), str) or not isinstance(rec.get("inputs"), dict):
        raise ValueError("a closing record without run and inputs (written by an older tinyreg: score into a new file)")
    return rec


def _typed_csv(row: dict[str, str]) -> dict[str, Any]:
    from registry._internal.jsonio import loads_json

    kind = row["type"]
    if kind == "run":
        doc = loads_json(row["run"], "run record")
        if not isinstance(doc, dict):
            raise ValueError("run record is not an object")
        return {**doc, "type": "run"}
    out: dict[str, Any] = {"type": kind, "pair": row["pair"]}
    try:
        if kind == "frame":
            out.update(frame=int(row["frame"]), score=float(row["score"]))
        elif kind == "pair":
            out["frames"] = int(row["frames"])
            out.update({k: float(row[k]) for k in STATS})
        elif kind == "error":
            out["error"] = row["error"]
    except ValueError as exc:
        raise ValueError(f"not a number ({str(exc)[:60]})") from exc
    if kind in ("pair", "error"):
        out["run"] = row["run"]
        out["inputs"] = loads_json(row["inputs"], "inputs") if row["inputs"] else None
    return out


def _decode(line: bytes, fmt: str) -> dict[str, Any]:
    from registry._internal.jsonio import loads_json

    if len(line) > MAX_LINE:
        raise ValueError(f"a line longer than {MAX_LINE} bytes")
    if fmt == "jsonl":
        return check_record(loads_json(line, "record"))
    try:
        rows = list(csv.reader([line.decode("utf-8")]))
    except csv.Error as exc:
        raise ValueError(f"malformed CSV ({exc})") from exc
    if len(rows) != 1 or len(rows[0]) != len(CSV_FIELDS):
        raise ValueError("wrong number of fields")
    return check_record(_typed_csv(dict(zip(CSV_FIELDS, rows[0], strict=True))))


def _complete_foreign(data: bytes) -> bool:
    """Whether ``data`` (a first line with no newline) is a whole JSON document but no record of ours: a kill mid-write
    leaves a prefix of a record, which does not parse; someone's ``{"error": ...}`` without a newline does."""
    if len(data) > MAX_LINE:
        return True  # longer than any record tinyreg writes
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False  # torn: cut it
    try:
        _decode(data, "jsonl")
    except (ValueError, UnicodeDecodeError, InputError):
        return True
    return False


def fmt_for(path: Path, fmt: str | None) -> str:
    f = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    if f not in FORMATS:
        raise UsageError(f"format {f!r}: use jsonl or csv")
    return f


def _differs(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            return f"{key} (the file has {json.dumps(old.get(key))[:40]}, this run {json.dumps(new.get(key))[:40]})"
    return None


class ResultsFile:
    """An append-only results file that survives being killed: see the module docstring.

    ``run``: this run's run record; ``write_run``: whether this file starts with it (shard 0).
    Opening a file whose run record, or whose closing records' run digest, differs from ``run``
    is refused (UsageError naming the field): a resume never mixes models, providers or options.
    """

    def __init__(self, path: Path, fmt: str, run: dict[str, Any] | None = None, *, write_run: bool = True) -> None:
        self.path = path
        self.fmt = fmt
        self.run = dict(run or {})
        self.run_id = run_digest(self.run)
        self.write_run = write_run
        self.done: dict[str, dict[str, Any]] = {}  # pair -> its last closing pair/error record
        self.dropped_bytes = 0
        self._fd = -1

    def _read(self) -> bytes:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror})") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{self.path}: not a regular file")
            from registry._internal.safeio import CAPS

            cap = CAPS["results"]  # checked before reading: an 8 GiB sparse file would take minutes and all memory
            if st.st_size > cap:
                raise InputError(f"{self.path}: {st.st_size} bytes, more than the {cap >> 30} GiB tinyreg reads of a results file")
            chunks = []
            left = cap + 1
            while left > 0:
                b = os.read(fd, min(1 << 22, left))
                if not b:
                    break
                chunks.append(b)
                left -= len(b)
            if left <= 0:
                raise InputError(f"{self.path}: grew past {cap >> 30} GiB while it was read")
            return b"".join(chunks)
        finally:
            os.close(fd)

    def open(self) -> ResultsFile:
        """Read what an earlier run finished, check it is this run's, cut any torn tail, and open for appending."""
        header = ",".join(CSV_FIELDS) + "\n"
        data = self._read()
        keep = 0
        pos = 0
        if self.fmt == "csv" and data:
            if not data.startswith(header.encode()):
                raise InputError(f"{self.path}: not a tinyreg CSV results file (header differs)")
            keep = pos = len(header)
        lineno = 1 if pos else 0
        found_run: dict[str, Any] | None = None
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # no newline: a torn tail
            lineno += 1
            try:
                rec = _decode(data[pos:nl], self.fmt)
            except (ValueError, UnicodeDecodeError, InputError) as exc:
                why = exc.diagnostics() if isinstance(exc, InputError) else str(exc)
                raise InputError(f"{self.path}:{lineno}: not a tinyreg results record ({why}); refusing to touch the file") from exc
            pos = nl + 1
            if rec["type"] == "run":
                run = {k: v for k, v in rec.items()}
                if found_run is not None and run != found_run:
                    raise InputError(f"{self.path}:{lineno}: a second, different run record (files of two runs joined?)")
                found_run = run
                keep = pos
            elif rec["type"] in ("pair", "error"):
                self.done[str(rec["pair"])] = rec
                keep = pos
        if data and pos == 0 and not data.startswith((b'{"frame', b'{"error"', b'{"entry"')):  # not a torn first write of ours
            raise InputError(f"{self.path}: holds no tinyreg results record; refusing to touch the file")
        if data and pos == 0 and self.fmt == "jsonl" and _complete_foreign(data):
            raise InputError(f"{self.path}: a complete JSON document that is not a tinyreg results record (not a torn "
                             "write of ours); refusing to touch the file")
        self._check_same_run(found_run)
        self.dropped_bytes = len(data) - keep
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        try:
            self._fd = os.open(self.path, flags, 0o644)
            if self.dropped_bytes:
                os.ftruncate(self._fd, keep)
            if keep == 0:
                os.ftruncate(self._fd, 0)
                start = header.encode() if self.fmt == "csv" else b""
                if self.write_run and self.run:
                    start += encode([{"type": "run", **self.run}], self.fmt)
                if start:
                    self._append(start)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write ({exc.strerror})") from exc
        return self

    def _check_same_run(self, found: dict[str, Any] | None) -> None:
        if not self.run:
            return
        if found is not None:
            mine = {"type": "run", **self.run}
            diff = _differs(found, mine)
            if diff is not None:
                raise UsageError(f"{self.path} holds results of another run: {diff}; score into a new file to keep both")
            if not self.write_run:
                raise UsageError(f"{self.path} starts with a run record, so it is the output of shard 0 or of a whole run; "
                                 "a later shard writes its own file")
        for rec in self.done.values():
            if rec.get("run") != self.run_id:
                raise UsageError(f"{self.path} holds results of another run (pair {rec['pair']!r}: run {rec.get('run')}, this run "
                                 f"{self.run_id}; its run record is the first line of shard 0); score into a new file")

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)

    def write(self, outcome: PairOutcome) -> None:
        """All of a pair's records in one append, then fsync."""
        recs = outcome.records(self.run_id)
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
