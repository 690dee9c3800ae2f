"""The ``registry.schema.json`` a registry folder carries for the VMAFx fork's CI gate.

The fork's gate (``ai/scripts/validate_model_registry.py``) validates ``registry.json``
against the schema file in the same folder: JSON Schema 2020-12, ``schema_version`` in
``[0, 1]``, no unknown field at the top level or in an entry. A schema_version 2 registry
fails it on every entry. ``compat_schema`` extends the folder's own schema, keeping every
rule it has, by exactly what tinyreg writes:

* ``schema_version`` also accepts 2;
* the top level also accepts tinyreg's ``migration``, ``signing`` and ``snapshot``, and an
  entry tinyreg's entry fields, each with tinyreg's own definition (copied under
  ``$defs/tinyreg_*``);
* nothing else: a field neither schema defines is still refused, and every constraint of the
  fork's (id and file-name patterns, lengths, opset range, enums) still holds, for
  schema_version 2 rows too.

A folder without a schema file (``tinyreg init``) gets the same extension of a base built from
tinyreg's own description of the VMAFx v1 entry (``$defs/legacy_entry``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from registry.store.document import CURRENT_SCHEMA_VERSION

MARK = "x-tinyreg"
PREFIX = "tinyreg_"
# Row fields tinyreg writes whose shape its schema leaves open (records of a run).
RECORD_FIELDS: dict[str, Any] = {
    "quant": {"type": "object", "description": "tinyreg: the last quantisation and gate records"},
    "parity": {"type": "object", "description": "tinyreg: the last parity record against the family's reference"},
}


class UnrecognisedSchema(ValueError):
    """The folder's schema file does not have the VMAFx shape (top-level ``models`` items as an object schema)."""


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                out[k] = "#/$defs/" + PREFIX + v[len("#/$defs/"):]
            else:
                out[k] = _rewrite_refs(v)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def _entry_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema of one ``models`` item (inline or a local ``$defs`` reference), to edit in place."""
    try:
        items = schema["properties"]["models"]["items"]
    except (KeyError, TypeError) as exc:
        raise UnrecognisedSchema("no properties.models.items") from exc
    if isinstance(items, dict) and isinstance(items.get("$ref"), str) and items["$ref"].startswith("#/$defs/"):
        target = schema.get("$defs", {}).get(items["$ref"][len("#/$defs/"):])
        if not isinstance(target, dict):
            raise UnrecognisedSchema(f"models items refer to {items['$ref']}, which is not there")
        items = target
    if not isinstance(items, dict) or not isinstance(items.get("properties"), dict):
        raise UnrecognisedSchema("models items have no properties")
    return items


def base_schema(tiny: Mapping[str, Any]) -> dict[str, Any]:
    """A closed VMAFx v1 schema from tinyreg's own description of the v1 entry."""
    legacy = _rewrite_refs(copy.deepcopy(tiny["$defs"]["legacy_entry"]))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "VMAF tiny-model registry (VMAFx layout)",
        "type": "object",
        "required": ["schema_version", "models"],
        "additionalProperties": False,
        "properties": {
            "$schema": {"type": "string"},
            "schema_version": {"type": "integer", "enum": [0, 1]},
            "models": {"type": "array", "items": {"$ref": "#/$defs/model_entry"}},
        },
        "$defs": {"model_entry": legacy},
    }


def compat_schema(base: Mapping[str, Any] | None, tiny: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (the folder's schema; None: a VMAFx v1 base) extended to accept what tinyreg writes.

    Idempotent: ``compat_schema(compat_schema(b)) == compat_schema(b)``.
    Raises UnrecognisedSchema when ``base`` does not have the VMAFx shape.
    """
    if tiny is None:
        from registry.store.schema import load_schema

        tiny = load_schema("registry")
    out = copy.deepcopy(dict(base)) if base is not None else base_schema(tiny)
    props = out.get("properties")
    if not isinstance(props, dict):
        raise UnrecognisedSchema("no top-level properties")
    version = props.get("schema_version")
    if isinstance(version, dict) and isinstance(version.get("enum"), list) and CURRENT_SCHEMA_VERSION not in version["enum"]:
        version["enum"] = [*version["enum"], CURRENT_SCHEMA_VERSION]
    entry = _entry_schema(out)
    defs = out.setdefault("$defs", {})
    for name, sub in tiny["$defs"].items():
        defs.setdefault(PREFIX + name, _rewrite_refs(copy.deepcopy(sub)))
    for name, sub in tiny["else"]["properties"].items():
        props.setdefault(name, _rewrite_refs(copy.deepcopy(sub)))
    for name, sub in tiny["$defs"]["entry"]["properties"].items():
        entry["properties"].setdefault(name, _rewrite_refs(copy.deepcopy(sub)))
    for name, sub in RECORD_FIELDS.items():
        entry["properties"].setdefault(name, copy.deepcopy(sub))
    out[MARK] = ("extended by tinyreg: schema_version 2 and the fields tinyreg writes (defined under $defs/tinyreg_*) "
                 "are accepted; every other rule of this schema still holds")
    return out


def compat_schema_bytes(base: Mapping[str, Any] | None) -> bytes:
    """The extended schema as JSON, in the base's own key order (tinyreg's additions after it)."""
    import json

    return (json.dumps(compat_schema(base), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
