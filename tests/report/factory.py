"""Results files as ``tinyreg score --manifest`` writes them (records from the writer's own code), for report tests."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from registry.scoring.results import PairOutcome, encode


def curve(n: int, seed: int = 0, spike: int | None = None) -> list[tuple[int, float]]:
    """A smooth per-frame distance curve with an optional one-frame spike (the worst frame of a lower-is-better metric)."""
    out = []
    for i in range(n):
        s = 0.1 + 0.03 * math.sin(i / max(1, n / 12) + seed) + 0.004 * ((i * 7919 + seed * 31) % 13) / 13
        out.append((i, 0.9 if i == spike else s))
    return out


def write_results(path: Path, pairs: dict[str, list[tuple[int, float]] | str], run: dict[str, Any] | None = None,
                  fmt: str = "jsonl", extra: list[dict[str, Any]] | None = None) -> Path:
    """``pairs``: name -> [(frame, score)] or an error string; ``run``: a leading run record (without its type)."""
    records: list[dict[str, Any]] = []
    if run is not None:
        records.append({"type": "run", **run})
    for name, v in pairs.items():
        o = PairOutcome(name, error=v) if isinstance(v, str) else PairOutcome(name, list(v))
        records += o.records()
    records += extra or []
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    else:
        path.write_bytes(b"type,pair,frame,score,frames,mean,p5,p50,p95,min,error\n"
                         + encode([r for r in records if r.get("type") != "run"], "csv"))
    return path
