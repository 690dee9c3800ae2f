"""Smoke placeholders: seeded random-weight models with the real model's ABI and op set."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from registry import __version__
from registry.families import get_family
from registry.families.base import Family
from registry.onnx.inspect import inspect_model
from registry.store.document import Entry


def smoke_bytes(family: Family, opset: int = 17) -> bytes:
    """The placeholder ONNX bytes; identical on every machine and every run."""
    data: bytes = family.build_smoke(opset).SerializeToString()
    return data


def tool_versions(*names: str) -> dict[str, str]:
    from importlib import metadata

    out = {"tinyreg": __version__, "python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def add_smoke(
    registry_path: Path, family_name: str, *, entry_id: str | None = None, opset: int = 17, force: bool = False
) -> Entry:
    """``tinyreg add FAMILY``: write the placeholder, its sidecar, entry and card."""
    from registry.store.entries import family_fields, write_entry

    fam = get_family(family_name)
    eid = entry_id or fam.default_id
    model = fam.build_smoke(opset)
    fields: dict[str, Any] = {
        **family_fields(fam, eid, inspect_model(model).io_json()),
        "smoke": True,
        "placeholder_for": fam.placeholder_for,
        "description": f"SMOKE PLACEHOLDER for {fam.title}: seeded random weights, real I/O contract and op set.",
        "provenance": {
            "generator": fam.smoke_generator,
            "seed": fam.smoke_seed,
            "tools": tool_versions("onnx", "numpy"),
        },
    }
    return write_entry(registry_path, fields, {fields["onnx"]: model.SerializeToString()}, force=force)
