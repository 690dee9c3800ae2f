"""The reports as a person sees them: opened in headless Debian chromium (make install installs it).

Each page must render, draw a curve for every scored pair, log no console error (a blocked
inline script or handler would log a Content-Security-Policy error) and request nothing but
the file itself. The screenshot stays in the test's temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.report.build import registry_report, results_report
from tests.report.browser import open_page
from tests.report.factory import HOSTILE, curve, write_results

COUNT = ("({curves: document.querySelectorAll('svg.curve-plot').length,"
         " lines: document.querySelectorAll('svg.curve-plot polyline').length,"
         " marks: document.querySelectorAll('svg.curve-plot circle.worst').length,"
         " hist: document.querySelectorAll('svg.hist-plot rect').length,"
         " h3: Array.from(document.querySelectorAll('h3')).map(e => e.textContent),"
         " scripts: document.scripts.length, imgs: document.images.length,"
         " width: document.documentElement.scrollWidth, height: document.body.scrollHeight})")


def only_the_file(requests: list[str], page: Path) -> list[str]:
    return [u for u in requests if u != page.resolve().as_uri() and not u.startswith("data:")]


@pytest.mark.slow
def test_results_report_in_chromium(tmp_path: Path) -> None:
    pairs: dict[str, list[tuple[int, float]] | str] = {
        "clip_a": curve(240, 1, spike=97), "clip_b_5000_frames": curve(5000, 2, spike=4321), "still_image": curve(1, 3),
        "broken": "clips/missing.y4m: cannot read (No such file or directory)", HOSTILE: curve(30, 4),
    }
    res = write_results(tmp_path / "results.jsonl", pairs,
                        run={"entry": "dists_vgg16", "family": "dists", "model_sha256": "fd2d" * 16, "provider": "cpu",
                             "precision": "fp32", "options": {"every": 1}})
    page = tmp_path / "report.html"
    results_report(res, page)
    load = open_page(page, tmp_path, COUNT)
    assert load.console_errors == []
    assert only_the_file(load.requests, page) == [] and page.resolve().as_uri() in load.requests
    dom = load.dom
    assert dom["curves"] == 4  # every scored pair, the failed one has its error instead
    assert dom["lines"] == 3 and dom["marks"] == 4  # one frame: a point, no line; every curve marks its worst frame
    assert dom["hist"] > 0 and dom["scripts"] == 0 and dom["imgs"] == 0
    assert any("</script>" in h for h in dom["h3"])  # the hostile pair name is text on the page, not markup
    assert dom["width"] <= 1200  # nothing pushes the page sideways (ids wrap inside their cells)
    assert load.screenshot is not None and load.screenshot.stat().st_size > 10_000


@pytest.mark.slow
def test_registry_report_in_chromium(reg_path: Path, tmp_path: Path) -> None:
    doc = json.loads(reg_path.read_text())
    e = doc["models"][0]
    doc["models"].append(dict(e, id=HOSTILE + "z" * 10_000, notes=HOSTILE, description=HOSTILE,
                              files=[dict(f, path=HOSTILE + f["path"]) for f in e["files"]]))
    reg_path.write_text(json.dumps(doc))
    page = tmp_path / "registry.html"
    registry_report(reg_path, page)
    load = open_page(page, tmp_path, COUNT, width=800)  # a narrow window and a 10 000-character id
    assert load.console_errors == [] and only_the_file(load.requests, page) == []
    assert load.dom["scripts"] == 0 and load.dom["imgs"] == 0
    assert load.dom["width"] <= 800  # the page never scrolls sideways: long ids wrap, wide tables scroll inside
    assert load.screenshot is not None and load.screenshot.is_file()


@pytest.mark.slow  # the harness's own check: rarely informative once it holds
def test_the_browser_check_sees_requests_and_errors(tmp_path: Path) -> None:
    """The harness itself: a page that fetches and logs is caught (so the checks above can fail)."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body></html>')
    load = open_page(bad, tmp_path, "document.images.length")
    assert only_the_file(load.requests, bad) == ["http://127.0.0.1:9/x.png"]
    assert any("boom" in e for e in load.console_errors)
