"""Smoke placeholders: seeded random-weight models with the real model's ABI and op set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.export.core import check_graph, check_opset, export_entry, family_fields, tool_versions
from registry.families import get_family
from registry.store.document import Entry

if TYPE_CHECKING:
    from registry.plugin import Family

__all__ = ["add_smoke", "smoke_bytes", "smoke_model", "tool_versions"]


def smoke_model(family: Family, opset: int = 17) -> Any:
    """The family's placeholder graph (``build(None, opset)``), through every graph check."""
    check_opset(opset)
    model = family.build(None, opset)
    check_graph(family, model, opset)
    return model


def smoke_bytes(family: Family, opset: int = 17) -> bytes:
    """The placeholder ONNX bytes; identical on every machine and every run."""
    data: bytes = smoke_model(family, opset).SerializeToString()
    return data


def add_smoke(
    registry_path: Path, family_name: str, *, entry_id: str | None = None, opset: int = 17, force: bool = False
) -> Entry:
    """``tinyreg add FAMILY``: write the placeholder, its sidecar, entry and card.

    A weight-free family has nothing to stand in for: its graph is the metric, so
    ``add`` writes the real entry (``smoke: false``), exactly as ``export`` does.
    """
    from registry.store.entries import write_entry

    fam = get_family(family_name)
    if not fam.weights:
        return export_entry(registry_path, family_name, opset=opset, entry_id=entry_id)
    eid = entry_id or fam.meta.default_id
    model = smoke_model(fam, opset)
    fields: dict[str, Any] = {
        **family_fields(fam, eid, fam.contract.io_json()),
        "smoke": True,
        "placeholder_for": fam.placeholder_for,
        "description": f"SMOKE PLACEHOLDER for {fam.meta.title}: seeded random weights, real I/O contract and op set.",
        "provenance": {
            "generator": f"tinyreg.families.{fam.name}.build_smoke/{fam.version}",
            "seed": fam.smoke_seed,
            "tools": tool_versions("onnx", "numpy"),
        },
    }
    return write_entry(registry_path, fields, {fields["onnx"]: model.SerializeToString()}, force=force)
