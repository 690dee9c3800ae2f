"""Fields of the wrong type in registry.json: load refuses (exit 2), verify reports, neither crashes (found by the fuzz harness)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import registry
from registry.errors import SchemaError
from registry.verify import verify_registry


@pytest.mark.parametrize("value", [True, [["x"]]])
def test_wrong_typed_files_field(reg_path: Path, value: object) -> None:
    doc = json.loads(reg_path.read_text())
    doc["models"][0]["files"] = value
    reg_path.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match="schema violation"):
        registry.load("dists_vgg16", reg_path)
    r = verify_registry(reg_path)
    assert r.errors and all("internal" not in f.message for f in r.findings)
