"""One schema copy: what the docs point at (docs/registry-format.md) is what the code loads."""

from __future__ import annotations

import json
import re
from pathlib import Path

from registry.store.schema import load_schema

REPO = Path(__file__).resolve().parents[2]


def test_readme_schemas_are_the_ones_the_code_loads() -> None:
    readme = (REPO / "docs" / "registry-format.md").read_text("utf-8")
    pointed = sorted(set(re.findall(r"`(schemas/[a-z]+\.schema\.json)`", readme)))
    assert pointed == ["schemas/registry.schema.json", "schemas/sidecar.schema.json"]
    for rel in pointed:
        path = REPO / rel
        name = path.name.removesuffix(".schema.json")
        assert path.is_symlink(), f"{rel} must link to the one copy, not be a second one"
        assert path.resolve() == (REPO / "registry" / "store" / "data" / path.name).resolve()
        assert json.loads(path.read_text("utf-8")) == load_schema(name)
