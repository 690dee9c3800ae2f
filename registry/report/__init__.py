"""Reports for people: a results file or a registry as one self-contained HTML page.

``read_results`` reads a dataset results file (tolerating a leading run record and record
fields it does not know); ``results_html`` and ``registry_html`` render the two pages. The
pages fetch nothing: no script, no font, no stylesheet from anywhere; plots are inline SVG,
and every text that comes from a registry or a results file is escaped.
"""

from __future__ import annotations

from registry.report.curves import downsample
from registry.report.results import PairCurve, ResultsDoc, read_results

__all__ = ["PairCurve", "ResultsDoc", "downsample", "read_results"]
