"""The two report pages: a dataset results file, and a registry under a trust policy."""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.report.html import curve_svg, esc, histogram_svg, kv_table, num, page, table
from registry.report.results import ResultsDoc

HEADING = 300  # characters of an id in a heading
ID_IN_TABLE = 160  # characters of an id in a summary table (its own section shows more)
MAX_PLOTS = 500  # pairs with a curve each; more pairs keep their summary row, the page says how many were left out


@dataclass(frozen=True)
class Metric:
    """What the scores mean, as far as it is known: a title and the direction of a better score."""

    title: str = ""
    direction: str = ""  # "lower is better" / "higher is better" / "" (unknown)
    placeholder: bool = False  # the entry is a smoke placeholder (random weights)

    @property
    def lower_is_better(self) -> bool | None:
        if self.direction.startswith("lower"):
            return True
        if self.direction.startswith("higher"):
            return False
        return None

    @property
    def worst_stat(self) -> str:
        return {True: "max", False: "min"}.get(self.lower_is_better, "worst")  # type: ignore[arg-type]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def results_html(doc: ResultsDoc, metric: Metric, *, source: str | None = None) -> str:
    """The report of one results file: run record, counts, summary table, distribution across pairs, a curve per pair."""
    name = source or Path(doc.path).name
    lower = metric.lower_is_better
    body = [f"<h1>tinyreg results: {esc(name)}</h1><p class=\"muted\">generated {_now()} from <code>{esc(doc.path)}</code></p>"]
    run = doc.run or {}
    smoke = run.get("smoke") is True or metric.placeholder
    if smoke:
        body.append("<div class=\"warn\">The model is a <b>SMOKE PLACEHOLDER</b> with random weights: these scores mean nothing.</div>")
    what = esc(metric.title) + " " if metric.title else ""
    if metric.direction:
        arrow = "&darr;" if lower else "&uarr;"
        body.append(f"<p>{what}scores: <b>{esc(metric.direction)} {arrow}</b>; each pair's worst frame is its "
                    f"<b>{metric.worst_stat}</b>, marked in red on its curve.</p>")
    else:
        body.append("<p class=\"warn\">The direction of the metric is not known (the file names no entry or family "
                    "that is installed here), so no worst frame is marked; min and max are both shown.</p>")
    body.append("<h2>Run</h2>")
    if doc.run is not None:
        body.append(kv_table((k, v) for k, v in sorted(doc.run.items()) if k != "type"))
    else:
        body.append("<p class=\"muted\">This results file has no run record (entry, model digest, options): "
                    "it was written before tinyreg recorded them.</p>")
    pairs = list(doc.pairs.values())
    failed = [p for p in pairs if p.error is not None]
    scored = [p for p in pairs if p.error is None and p.scores]
    incomplete = [p for p in pairs if p.error is None and p.summary is None and p.scores]
    parts = [f"{len(pairs)} pairs: {len(scored)} scored, {len(failed)} failed"]
    if incomplete:
        parts.append(f"{len(incomplete)} of the scored ones without a closing summary (an unfinished run)")
    parts.append(f"{doc.frames} frames")
    if doc.ignored:
        parts.append(f"{doc.ignored} records of an unknown type ignored")
    if doc.torn:
        parts.append("a torn last line ignored")
    body.append(f"<p>{esc('; '.join(parts))}</p>")

    body.append("<h2>Summary</h2>")
    rows = []
    means: list[float] = []
    for p in pairs:
        if p.error is not None:
            rows.append([(esc(p.pair, ID_IN_TABLE), "id"), *([("", "n")] * 8), (f"<span class=\"bad\">{esc(p.error)}</span>", "")])
            continue
        st = p.stats()
        w = p.worst(lower)
        if "mean" in st:
            means.append(float(st["mean"]))
        nonfinite = f"{st['nonfinite']} non-finite scores" if st["nonfinite"] else ""
        rows.append([(esc(p.pair, ID_IN_TABLE), "id"), (num(st["frames"]), "n"),
                     *((num(st.get(k)), "n") for k in ("mean", "p5", "p50", "p95", "min", "max")),
                     (f"{w[0]} ({num(w[1])})" if w else "-", "n"), (esc(nonfinite), "")])
    body.append(table(["pair", "frames", "mean", "p5", "p50", "p95", "min", "max", f"worst frame ({metric.worst_stat})", "note"],
                      rows))
    body.append("<h2>Distribution across pairs</h2>")
    body.append(f"<p class=\"muted\">per-pair mean score, {len(means)} pairs</p>")
    body.append(histogram_svg(means, "histogram of per-pair mean scores"))

    body.append("<h2>Per-frame curves</h2>")
    for p in scored[:MAX_PLOTS]:
        x, y = p.arrays()
        w = p.worst(lower)
        st = p.stats()
        note = f"; {st['nonfinite']} non-finite scores (NaN left out, inf at the edge)" if st["nonfinite"] else ""
        body.append(f"<h3>{esc(p.pair, HEADING)}</h3><p class=\"muted\">{len(y)} frame{'s' if len(y) != 1 else ''}{esc(note)}; "
                    "x: frame, y: score</p>")
        body.append(curve_svg(x, y, w, f"scores per frame of pair {p.pair}"))
    if len(scored) > MAX_PLOTS:
        body.append(f"<p class=\"warn\">{len(scored) - MAX_PLOTS} more pairs have a summary row above but no curve "
                    f"(at most {MAX_PLOTS} curves per page).</p>")
    if not pairs:
        body.append("<p class=\"warn\">The results file holds no pair yet.</p>")
    return page(f"tinyreg results: {name}", body)


def _signature_state(entry: dict[str, Any], findings: list[Any], trust: str | None) -> tuple[str, str]:
    """(text, css class) of the entry's signature state under the trust policy."""
    sig = [f for f in findings if f.check == "signature"]
    if sig:
        return "; ".join(f.message for f in sig), "bad"
    if not entry.get("sigstore_bundle"):
        return "not signed", "muted"
    if trust:
        return "verified under the trust policy", "good"
    return "signature present; not checked against a consumer trust policy", "muted"


def registry_html(report: Any, entries: list[dict[str, Any]], *, trust: str | None) -> str:
    """The registry page: a verdict, then every entry with its pins, signature state, gate and parity figures."""
    from registry.verify import SELF_VOUCHING

    body = [f"<h1>tinyreg registry: {esc(report.registry)}</h1><p class=\"muted\">generated {_now()}; schema_version "
            f"{esc(report.schema_version)}; {len(entries)} entries</p>"]
    verdict = ("<span class=\"good\">verify: OK</span>" if report.ok
               else f"<span class=\"bad\">verify: FAILED, {len(report.errors)} errors</span>")
    body.append(f"<p>{verdict}, {len(report.findings) - len(report.errors)} warnings, {report.checked_files} files checked. "
                + (f"Trust policy: <code>{esc(trust)}</code>.</p>" if trust
                   else f"</p><div class=\"warn\">{esc(SELF_VOUCHING)}</div>"))
    by_entry: dict[str, list[Any]] = {}
    for f in report.findings:
        by_entry.setdefault(f.entry, []).append(f)
    rows = []
    for e in entries:
        eid = str(e.get("id"))
        state, cls = _signature_state(e, by_entry.get(eid, []), trust)
        gate = (e.get("quant") or {}).get("gate") if isinstance(e.get("quant"), dict) else None
        gate_txt = _gate_text(gate) if isinstance(gate, dict) else "-"
        par = e.get("parity")
        par_txt = (f"{'PASS' if par.get('passed') is True else 'FAIL'}: max {_f(par.get('max_abs_diff'))} "
                   f"(tolerance {_f(par.get('tolerance'))})" if isinstance(par, dict) else "not measured")
        rows.append([(esc(eid, ID_IN_TABLE), "id"), (esc(e.get("family", "-"), ID_IN_TABLE), ""),
                     ("SMOKE" if e.get("smoke") is True else "", "bad"),
                     (esc(state), cls), (esc(gate_txt), ""), (esc(par_txt), ""), (f"{len(by_entry.get(eid, []))}", "n")])
    body.append("<h2>Entries</h2>")
    body.append(table(["entry", "family", "placeholder", "signature", "int8 gate", "parity", "findings"], rows))
    for e in entries:
        eid = str(e.get("id"))
        body.append(f"<h2>{esc(eid, HEADING)}</h2>")
        if e.get("smoke") is True:
            body.append("<div class=\"warn\">SMOKE PLACEHOLDER: random weights; its scores and gate figures say nothing "
                        "about the real model.</div>")
        desc = e.get("description")
        if desc:
            body.append(f"<p>{esc(desc)}</p>")
        listed = e.get("files")
        files: list[Any] = listed if isinstance(listed, list) else []
        pins = [[(esc(f.get("path")), "id"), (esc(f.get("role", "")), ""), (esc(f.get("sha256")), "id"), (num(f.get("size")), "n")]
                for f in files if isinstance(f, dict)]
        if not pins and e.get("onnx"):
            pins = [[(esc(e.get("onnx")), "id"), ("onnx", ""), (esc(e.get("sha256")), "id"), (num(e.get("size")), "n")]]
        body.append("<h3>Pins</h3>" + table(["file", "role", "sha256", "bytes"], pins))
        state, cls = _signature_state(e, by_entry.get(eid, []), trust)
        body.append(f"<h3>Signature</h3><p class=\"{cls}\">{esc(state)}</p>")
        quant = e.get("quant")
        gate = quant.get("gate") if isinstance(quant, dict) else None
        if isinstance(gate, dict):
            body.append("<h3>int8 gate</h3><p>" + esc(_gate_text(gate)) + "</p>")
        parity = e.get("parity")
        if isinstance(parity, dict):
            body.append("<h3>Parity with the reference</h3><p>" + esc(_parity_text(parity)) + "</p>")
        found = by_entry.get(eid, [])
        if found:
            body.append("<h3>verify findings</h3>" + table(
                ["severity", "check", "finding"],
                [[(esc(f.severity), "bad" if f.severity == "error" else ""), (esc(f.check), ""), (esc(f.message), "")] for f in found]))
    rest = [f for k, fs in by_entry.items() if k not in {str(e.get("id")) for e in entries} for f in fs]
    if rest:
        body.append("<h2>Registry-wide findings</h2>" + table(
            ["severity", "entry", "check", "finding"],
            [[(esc(f.severity), "bad" if f.severity == "error" else ""), (esc(f.entry), "id"), (esc(f.check), ""),
              (esc(f.message), "")] for f in rest]))
    return page(f"tinyreg registry: {report.registry}", body)


def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return num(v, digits) if math.isfinite(v) or math.isnan(v) else num(v)


def _gate_text(g: dict[str, Any]) -> str:
    got = g.get("drop_ci95")
    ci: list[Any] = got if isinstance(got, list) and len(got) == 2 else ["?", "?"]
    verdict = "PASS" if g.get("passed") is True else "FAIL" if g.get("passed") is False else "no verdict recorded"
    samples = f" on {g['samples']} samples" if "samples" in g else ""
    return (f"{verdict}: drop = 1 - PLCC against fp32{samples} = {_f(g.get('drop'))} (95% CI {_f(ci[0])}..{_f(ci[1])}), "
            f"budget {_f(g.get('budget'))}; mode {g.get('mode', '?')}, PLCC {_f(g.get('plcc'), 5)}, SROCC {_f(g.get('srocc'), 5)}")


def _parity_text(p: dict[str, Any]) -> str:
    verdict = "PASS" if p.get("passed") is True else "FAIL" if p.get("passed") is False else "no verdict recorded"
    return (f"{verdict}: max |onnx - reference| = {_f(p.get('max_abs_diff'))} (tolerance {_f(p.get('tolerance'))}) on "
            f"{p.get('pairs', '?')} samples; mean {_f(p.get('mean_abs_diff'))}; identical inputs {_f(p.get('identical_max_abs'))}; "
            f"reference {p.get('reference', '?')}, onnxruntime {p.get('onnxruntime', '?')}")
