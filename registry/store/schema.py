"""JSON Schemas of the registry and sidecars, and validation against them."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from registry.errors import SchemaError


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """``name`` is ``registry`` or ``sidecar``; the file ships in registry/data."""
    text = resources.files("registry.store").joinpath("data", f"{name}.schema.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


@functools.cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _where(path: Any) -> str:
    parts = [str(p) for p in path]
    return "/".join(parts) if parts else "(top level)"


def schema_errors(doc: Any, name: str) -> list[str]:
    """Every violation as 'where: message', sorted for stable output."""
    errors = []
    for err in _validator(name).iter_errors(doc):
        msg = err.message
        if len(msg) > 200:
            msg = msg[:197] + "..."
        errors.append(f"{_where(err.absolute_path)}: {msg}")
    return sorted(set(errors))


def require_valid_registry(doc: Any, source: str) -> None:
    errs = schema_errors(doc, "registry")
    if errs:
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        raise SchemaError(f"{source}: schema violation at {errs[0]}{more}")
