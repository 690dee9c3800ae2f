"""Build a report file: read, resolve what the scores mean, render, write one HTML file atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.errors import UsageError
from registry.report.pages import Metric, registry_html, results_html
from registry.report.results import ResultsDoc, read_results


@dataclass(frozen=True)
class Written:
    """What a report run wrote and what it holds (the CLI's result)."""

    out: str
    kind: str  # "results" or "registry"
    source: str
    bytes: int
    pairs: int = 0
    frames: int = 0
    failed: int = 0
    entries: int = 0
    ok: bool = True  # registry: verify's verdict
    direction: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"out": self.out, "kind": self.kind, "source": self.source, "bytes": self.bytes, "pairs": self.pairs,
                "frames": self.frames, "failed": self.failed, "entries": self.entries, "verify_ok": self.ok,
                "direction": self.direction or None}


def metric_for(doc: ResultsDoc, registry: Path | None) -> Metric:
    """The metric of a results file: the run record's direction or family, else its entry's family in the registry."""
    from registry.families import get_family

    run = doc.run or {}
    family = run.get("family")
    placeholder = False
    if isinstance(run.get("entry"), str):
        try:
            from registry.store.document import find_registry, read_registry

            row = read_registry(find_registry(registry)).get(str(run["entry"]))
            listed = row.get("files")
            files: list[Any] = listed if isinstance(listed, list) else []
            digests = {row.get("sha256"), row.get("int8_sha256"), *(f.get("sha256") for f in files if isinstance(f, dict))}
            # the entry is a placeholder, and the model that ran is one of its files (fp32 or a sibling)
            placeholder = row.get("smoke") is True and run.get("model_sha256", row.get("sha256")) in digests
            if not isinstance(family, str):
                family = row.get("family")
        except Exception:  # no registry here, or the entry is gone: the direction stays unknown (the page says so)
            pass
    title, direction = "", ""
    if isinstance(family, str):
        try:
            meta = get_family(family).meta
            title, direction = meta.title, meta.direction.value
        except Exception:  # a family not installed here
            title = family
    recorded = run.get("direction")
    if isinstance(recorded, str) and recorded.split(" ")[0] in ("lower", "higher"):
        direction = recorded
    return Metric(title, direction, placeholder)


def _refuse_inside(out: Path, folder: Path) -> None:
    try:
        out.resolve().relative_to(folder.resolve())
    except ValueError:
        return
    raise UsageError(f"{out} is inside the registry folder {folder}; a report is not a registry file (verify would "
                     "find it unlisted): write it elsewhere")


def _write(out: Path, text: str) -> int:
    from registry._internal.atomic import write_atomic

    if out.exists() and not out.is_file():
        raise UsageError(f"{out} exists and is not a regular file")
    data = text.encode("utf-8")
    write_atomic(out, data)
    return len(data)


def results_report(results: Path, out: Path, *, registry: Path | None = None) -> Written:
    """Write the HTML report of a results file to ``out`` (the registry, if any, only names the metric)."""
    doc = read_results(results)
    metric = metric_for(doc, registry)
    if results.resolve() == out.resolve():
        raise UsageError("the report would overwrite the results file; name another output file")
    n = _write(out, results_html(doc, metric))
    return Written(str(out), "results", str(results), n, pairs=len(doc.pairs), frames=doc.frames, failed=len(doc.failed),
                   direction=metric.direction)


def registry_report(registry: Path | None, out: Path, *, trust: Path | None = None) -> Written:
    """Write the HTML report of a registry (verified under ``trust`` when given) to ``out``."""
    from registry.store.document import find_registry, read_registry
    from registry.verify import verify_registry

    path = find_registry(registry)
    _refuse_inside(out, path.parent)
    report = verify_registry(path, trust=trust)
    entries = sorted((dict(e) for e in read_registry(path).entries), key=lambda e: str(e.get("id")))
    n = _write(out, registry_html(report, entries, trust=str(trust) if trust else None))
    return Written(str(out), "registry", str(path), n, entries=len(entries), ok=report.ok)
