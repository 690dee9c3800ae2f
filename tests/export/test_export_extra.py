"""Without torch, exporting a family with weight files says which extra to install before any download."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from registry.errors import MissingDependency
from registry.export import core


def test_export_without_torch_names_the_extra_before_fetching(reg_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(core.importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))

    def no_fetch(*a: object, **k: object) -> None:
        raise AssertionError("fetched weights although torch is missing")

    monkeypatch.setattr(core, "fetch_weights", no_fetch)
    with pytest.raises(MissingDependency, match=r"'export' extra"):
        core.export_entry(reg_path, "dists")
