"""HTML building blocks: escaping, the page shell with its Content-Security-Policy, inline SVG plots.

Every string that reaches the page goes through :func:`esc` (text and attribute values
alike); control characters and bidi overrides are shown as visible escapes, so a
registry's ids, notes or file names cannot add markup, script or reorder the page's text.
The page has no script and loads nothing: the CSP forbids every fetch but inline styles
and ``data:`` images.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from registry.errors import printable
from registry.report.curves import downsample

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MAX_TEXT = 2000  # a longer registry string is cut (with its length said) so one field cannot bury the page

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1d2430;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
h1,h2,h3{overflow-wrap:anywhere}h3{font-size:15px;margin:18px 0 4px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #dde2ea;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f8}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.id,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}td.id{min-width:12ch}
.muted{color:#5d6878}.bad{color:#b3261e;font-weight:600}.good{color:#1b7a3d;font-weight:600}
.warn{background:#fff4e5;border:1px solid #f0b45b;padding:6px 10px;border-radius:4px;margin:8px 0}
svg{display:block;margin:4px 0 10px;background:#fbfcfd;border:1px solid #e4e8ee;max-width:100%;height:auto}
.scroll{overflow-x:auto;max-width:100%}
svg text{font:11px system-ui,sans-serif;fill:#4a5565}
.curve{fill:none;stroke:#2f6fdf;stroke-width:1.2}.point{fill:#2f6fdf}.worst{fill:#d93025}.bar{fill:#6b93d6}
.grid{stroke:#e4e8ee;stroke-width:1}
"""


def esc(value: Any, limit: int = MAX_TEXT) -> str:
    """Text for the page: control and bidi characters as visible escapes, markup characters escaped, cut at ``limit``."""
    text = printable(str(value))
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text)} characters)"
    return html.escape(text, quote=True)


def num(x: Any, digits: int = 6) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return esc(x)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+inf" if f > 0 else "-inf"
    return f"{f:.{digits}g}"


def page(title: str, body: Iterable[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<meta name=\"referrer\" content=\"no-referrer\"><title>{esc(title)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


def table(columns: Sequence[str], rows: Iterable[Sequence[tuple[str, str]]], cls: str = "") -> str:
    """``rows`` of (already escaped html, css class) cells; column names are escaped here."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td class=\"{c}\">{h}</td>" if c else f"<td>{h}</td>" for h, c in r) + "</tr>"
                   for r in rows)
    return (f"<div class=\"scroll\"><table class=\"{cls}\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            "</div>")


def kv_table(items: Iterable[tuple[str, Any]]) -> str:
    import json

    rows = []
    for k, v in items:
        text = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)  # JSON's words: false, null
        rows.append([(esc(k), "id"), (esc(text), "id")])
    return table(["field", "value"], rows)


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi / 2 - lo / 2) * 2 * i / n if math.isfinite(hi - lo) else lo / n * (n - i) + hi / n * i for i in range(n + 1)]


def _span(lo: float, hi: float) -> tuple[float, float]:
    """A plot range with a width: a flat range is widened a little around its value (never to an infinity)."""
    if hi / 2 - lo / 2 > max(abs(lo), abs(hi)) * 1e-12:
        return lo, hi
    d = max(abs(lo), abs(hi)) * 0.005 or 0.5
    wide_lo, wide_hi = lo - d, hi + d
    return (wide_lo if math.isfinite(wide_lo) else lo), (wide_hi if math.isfinite(wide_hi) else hi)


def _frac(v: float, lo: float, hi: float) -> float:
    """Where ``v`` lies between ``lo`` and ``hi`` (0..1), computed in halves so that no difference overflows."""
    return (v / 2 - lo / 2) / (hi / 2 - lo / 2)


W, H, ML, MR, MT, MB = 760, 190, 64, 14, 12, 30


def curve_svg(frames: np.ndarray, scores: np.ndarray, worst: tuple[int, float] | None, label: str, points: int = 1500) -> str:
    """The per-frame curve of one pair as inline SVG: downsampled (extremes kept), the worst frame marked.

    Infinite scores are drawn at the plot's edge; NaN frames are left out (the caller counts them).
    """
    x, y = downsample(frames, scores, points)
    finite = y[np.isfinite(y)]
    body: list[str] = []
    if len(finite) == 0:
        lo, hi = 0.0, 1.0
    else:
        lo, hi = float(finite.min()), float(finite.max())
    lo, hi = _span(lo, hi)
    x0, x1 = (int(frames.min()), int(frames.max())) if len(frames) else (0, 1)
    if x1 == x0:
        x1 = x0 + 1
    pw, ph = W - ML - MR, H - MT - MB

    def px(v: float) -> float:
        return ML + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        v = min(max(v, lo), hi) if math.isfinite(v) else (hi if v > 0 else lo)
        return MT + (1 - _frac(v, lo, hi)) * ph

    for t in _ticks(lo, hi):
        yy = py(t)
        body.append(f"<line class=\"grid\" x1=\"{ML}\" y1=\"{yy:.1f}\" x2=\"{W - MR}\" y2=\"{yy:.1f}\"/>"
                    f"<text x=\"{ML - 6}\" y=\"{yy + 4:.1f}\" text-anchor=\"end\">{num(t, 3)}</text>")
    xt = sorted({round(t) for t in _ticks(float(x0), float(frames.max()) if len(frames) else float(x0))})
    for i, t in enumerate(xt):
        anchor = "start" if i == 0 and len(xt) > 1 else "end" if i == len(xt) - 1 and len(xt) > 1 else "middle"
        body.append(f"<text x=\"{px(t):.1f}\" y=\"{H - 10}\" text-anchor=\"{anchor}\">{t}</text>")
    if len(y) == 1:
        body.append(f"<circle class=\"point\" cx=\"{px(float(x[0])):.1f}\" cy=\"{py(float(y[0])):.1f}\" r=\"3\"/>")
    elif len(y):
        pts = " ".join(f"{px(float(a)):.1f},{py(float(b)):.1f}" for a, b in zip(x, y, strict=True))
        body.append(f"<polyline class=\"curve\" points=\"{pts}\"/>")
    if worst is not None:
        wx, wy = px(float(worst[0])), py(worst[1])
        anchor = "end" if wx > W - 160 else "start"
        dx = -6 if anchor == "end" else 6
        body.append(f"<circle class=\"worst\" cx=\"{wx:.1f}\" cy=\"{wy:.1f}\" r=\"4\"><title>worst frame {worst[0]}: "
                    f"{num(worst[1])}</title></circle><text x=\"{wx + dx:.1f}\" y=\"{max(MT + 10, wy - 6):.1f}\" "
                    f"text-anchor=\"{anchor}\">worst: frame {worst[0]} ({num(worst[1])})</text>")
    return (f"<svg class=\"plot curve-plot\" role=\"img\" aria-label=\"{esc(label)}\" width=\"{W}\" height=\"{H}\" "
            f"viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\">{''.join(body)}</svg>")


def histogram_svg(values: Sequence[float], label: str, bins: int = 20) -> str:
    """Counts of ``values`` (finite ones) in ``bins`` equal bins, as inline SVG bars."""
    v = np.asarray([x for x in values if math.isfinite(x)], np.float64)
    body: list[str] = []
    pw, ph = W - ML - MR, H - MT - MB
    if len(v):
        lo, hi = _span(float(v.min()), float(v.max()))
        scale = max(abs(lo), abs(hi)) or 1.0  # binned in [-1, 1]: no bin width overflows
        counts, edges_scaled = np.histogram(v / scale, bins=bins, range=(lo / scale, hi / scale))
        edges = edges_scaled * scale
        top = max(1, int(counts.max()))
        bw = pw / bins
        for i, c in enumerate(counts):
            h = c / top * ph
            body.append(f"<rect class=\"bar\" x=\"{ML + i * bw + 1:.1f}\" y=\"{MT + ph - h:.1f}\" width=\"{max(1.0, bw - 2):.1f}\" "
                        f"height=\"{h:.1f}\"><title>{num(edges[i], 4)}..{num(edges[i + 1], 4)}: {int(c)}</title></rect>")
        ticks = _ticks(lo, hi)
        for i, t in enumerate(ticks):
            anchor = "start" if i == 0 else "end" if i == len(ticks) - 1 else "middle"
            body.append(f"<text x=\"{ML + _frac(t, lo, hi) * pw:.1f}\" y=\"{H - 10}\" text-anchor=\"{anchor}\">{num(t, 4)}</text>")
        body.append(f"<text x=\"{ML - 6}\" y=\"{MT + 8}\" text-anchor=\"end\">{top}</text>"
                    f"<text x=\"{ML - 6}\" y=\"{MT + ph}\" text-anchor=\"end\">0</text>")
    else:
        body.append(f"<text x=\"{W / 2}\" y=\"{H / 2}\" text-anchor=\"middle\">no finite scores</text>")
    return (f"<svg class=\"plot hist-plot\" role=\"img\" aria-label=\"{esc(label)}\" width=\"{W}\" height=\"{H}\" "
            f"viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\">{''.join(body)}</svg>")
