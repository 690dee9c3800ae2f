"""Results files as ``tinyreg score --manifest`` writes them, and as other tools or older tinyregs might (NaN, inf),
for the report tests. Records are built here, not by the writer, so the reader is tested on what a file may hold."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from registry.scoring.results import CSV_FIELDS, encode


def curve(n: int, seed: int = 0, spike: int | None = None) -> list[tuple[int, float]]:
    """A smooth per-frame distance curve with an optional one-frame spike (the worst frame of a lower-is-better metric)."""
    out = []
    for i in range(n):
        s = 0.1 + 0.03 * math.sin(i / max(1, n / 12) + seed) + 0.004 * ((i * 7919 + seed * 31) % 13) / 13
        out.append((i, 0.9 if i == spike else s))
    return out


def _summary(scores: list[float]) -> dict[str, Any]:
    a = np.asarray(scores, np.float64)
    with np.errstate(all="ignore"):
        p5, p50, p95 = (float(v) for v in np.percentile(a, [5, 50, 95]))
        return {"frames": len(scores), "mean": float(a.mean()), "p5": p5, "p50": p50, "p95": p95, "min": float(a.min())}


def write_results(path: Path, pairs: dict[str, list[tuple[int, float]] | str], run: dict[str, Any] | None = None,
                  fmt: str = "jsonl", extra: list[dict[str, Any]] | None = None) -> Path:
    """``pairs``: name -> [(frame, score)] or an error string; ``run``: a leading run record (without its type)."""
    records: list[dict[str, Any]] = []
    if run is not None:
        records.append({"type": "run", **run})
    closing = {"run": "0123456789abcdef", "inputs": {}}
    for name, v in pairs.items():
        if isinstance(v, str):
            records.append({"type": "error", "pair": name, "error": v, **closing})
            continue
        records += [{"type": "frame", "pair": name, "frame": i, "score": s} for i, s in v]
        records.append({"type": "pair", "pair": name, **_summary([s for _, s in v]), **closing})
    records += extra or []
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    else:
        path.write_bytes((",".join(CSV_FIELDS) + "\n").encode() + encode(records, "csv"))
    return path

# registry or results text that tries to become markup, script, terminal control or a reversed line
HOSTILE = '</script><script>alert(1)</script>"><img src=x onerror=alert(2)><svg onload=alert(3)>\u202e\x1b[2J\x00'
