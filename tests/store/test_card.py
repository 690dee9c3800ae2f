"""Model cards: the licence in the front matter is an id the Hugging Face Hub accepts; SPDX stays in registry.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from registry.store.card import render_card
from registry.store.document import read_registry
from registry.store.licenses import hub_license, hub_license_ids

REPO = Path(__file__).resolve().parents[2]


def front_matter(card: str) -> dict[str, object]:
    assert card.startswith("---\n")
    doc = yaml.safe_load(card.split("---\n", 2)[1])
    assert isinstance(doc, dict)
    return doc


def test_vendored_hub_list_has_provenance() -> None:
    data = json.loads((REPO / "registry" / "store" / "data" / "hf_licenses.json").read_text())
    assert re.fullmatch(r"https://github\.com/huggingface/hub-docs/blob/[0-9a-f]{40}/docs/hub/repositories-licenses\.md", data["source"])
    ids = hub_license_ids()
    assert {"mit", "bsd-2-clause", "bsd-3-clause", "apache-2.0", "other", "unknown"} <= ids
    assert all(re.fullmatch(r"[a-z0-9.+-]+", i) for i in ids)


def test_shipped_cards_use_hub_ids_and_registry_keeps_spdx() -> None:
    reg = read_registry(REPO / "model" / "tiny" / "registry.json")
    seen = {}
    for entry in reg.entries:
        card = (REPO / "model" / "tiny" / f"{entry['id']}.md").read_text()
        assert card == render_card(entry)
        fm = front_matter(card)
        assert fm["license"] in hub_license_ids() and fm["license"] not in ("other", "unknown")
        assert f"SPDX: {entry['license']}" in card  # the SPDX id is still in the card body
        seen[entry["license"]] = fm["license"]
    assert seen == {"MIT": "mit", "BSD-2-Clause": "bsd-2-clause"}  # registry.json keeps SPDX


@pytest.mark.parametrize(("spdx", "hub"), [
    ("MIT", "mit"), ("BSD-2-Clause", "bsd-2-clause"), ("BSD-3-Clause", "bsd-3-clause"), ("Apache-2.0", "apache-2.0"),
    ("GPL-3.0-only", "gpl-3.0"), ("LGPL-2.1-or-later", "lgpl-2.1"), ("AGPL-3.0-only", "agpl-3.0"), ("GPL-2.0+", "gpl-2.0"),
    ("CC-BY-NC-4.0", "cc-by-nc-4.0"), ("CC0-1.0", "cc0-1.0"), ("ODbL-1.0", "odbl"), ("PDDL-1.0", "pddl"), ("Zlib", "zlib"),
    ("NOASSERTION", "unknown"), ("", "unknown"),
])
def test_spdx_to_hub(spdx: str, hub: str) -> None:
    assert hub_license(spdx) == {"license": hub}
    assert hub in hub_license_ids()


@pytest.mark.parametrize("spdx", ["LicenseRef-VMAFx-Tiny", "MIT AND BSD-3-Clause", "Apache-2.0 WITH LLVM-exception", "SSPL-1.0"])
def test_unknown_becomes_other_with_name_and_link(spdx: str) -> None:
    fm = front_matter(render_card({"id": "m", "kind": "fr", "license": spdx, "license_url": "https://example.org/LICENSE"}))
    assert fm["license"] == "other"
    assert re.fullmatch(r"[a-z0-9.+-]+", str(fm["license_name"]))
    assert fm["license_link"] == "https://example.org/LICENSE"
    without_url = front_matter(render_card({"id": "m", "kind": "fr", "license": spdx}))
    assert without_url["license_link"] == "LICENSE"
