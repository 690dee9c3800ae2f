"""SPDX licence ids (kept in registry.json) -> the ids the Hugging Face Hub accepts in a card.

The Hub's list is vendored in ``data/hf_licenses.json`` with the commit it was taken from.
Most Hub ids are the SPDX id in lower case; the GNU ``-only``/``-or-later`` forms map to the
Hub's versioned id, and a few SPDX ids have a Hub id of their own. Anything else (an unknown
id, a ``LicenseRef-``, an SPDX expression with AND/OR/WITH) becomes ``other`` with a
``license_name`` and a ``license_link``, as the Hub asks.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

# SPDX ids whose Hub id is not simply the SPDX id in lower case
_SPECIAL = {
    "pddl-1.0": "pddl",
    "odbl-1.0": "odbl",
    "odc-by-1.0": "odc-by",
    "c-uda-1.0": "c-uda",
}
# GPL-3.0-only, LGPL-2.1-or-later, AGPL-3.0-only, GPL-2.0+ -> the Hub's versioned id (the exact
# SPDX id stays in registry.json and in the card's Licence section); GFDL-1.x -> the family id
_GNU_SUFFIX = re.compile(r"^((?:a|l)?gpl-\d\.\d)(-only|-or-later|\+)$")
_GFDL = re.compile(r"^gfdl-1\.\d(-(?:no-)?invariants)?(-only|-or-later)?$")


@cache
def hub_license_ids() -> frozenset[str]:
    """The licence ids the Hub accepts (vendored list)."""
    data = json.loads(resources.files("registry.store").joinpath("data/hf_licenses.json").read_text("utf-8"))
    return frozenset(data["ids"])


def hub_license(spdx: object, url: object = None) -> dict[str, Any]:
    """Card front-matter fields for an SPDX id: ``{"license": id}``, or ``other`` with name and link."""
    ids = hub_license_ids()
    text = str(spdx).strip() if isinstance(spdx, str) else ""
    key = text.lower()
    hub = _SPECIAL.get(key)
    if hub is None:
        m = _GNU_SUFFIX.match(key)
        hub = m.group(1) if m else ("gfdl" if _GFDL.match(key) else key)
    if hub in ids and hub not in ("other", "unknown"):
        return {"license": hub}
    if not text or key in ("unknown", "noassertion", "none"):
        return {"license": "unknown"}
    name = re.sub(r"[^a-z0-9.+-]+", "-", key).strip("-") or "custom"
    return {"license": "other", "license_name": name, "license_link": str(url) if isinstance(url, str) and url else "LICENSE"}
