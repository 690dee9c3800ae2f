"""Typed registry rows: the fields of a ``models[]`` entry as mypy sees them, and one predicate per question.

``EntryV2`` is the schema_version 2 row (registry/store/data/registry.schema.json, ``$defs/entry``),
``EntryV1`` the VMAFx schema_version 0/1 row (``$defs/legacy_entry``). A row comes from a JSON
document, so the types say which keys exist and what they hold once the schema accepted the row;
code that reads a row it has not validated still asks ``.get()`` and checks the type. Writers
add fields the schema leaves open (``quant``, ``parity``, ``prepare``, fork fields); they are
listed here too, so a misspelt key is a mypy error everywhere.

Ask questions through the predicates (``is_smoke``, ``has_int8``, ``declares_int8``, ...), not
by reading keys: one answer per question.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

__all__ = [
    "INT8_MODES",
    "EntryV1",
    "EntryV2",
    "FilePin",
    "FileRole",
    "Provenance",
    "Row",
    "declares_int8",
    "has_int8",
    "has_signature",
    "is_adopted",
    "is_smoke",
    "pinned_files",
]

Kind = Literal["fr", "nr", "filter"]
QuantMode = Literal["fp32", "static", "dynamic", "qat"]
FileRole = Literal["onnx", "external_data", "int8", "int8_external_data", "fp16", "fp16_external_data", "sidecar", "calibration",
                   "gate_inputs", "signature"]

# the quantisation modes that produce an int8 sibling (fp32 does not)
INT8_MODES: tuple[str, ...] = ("static", "dynamic", "qat")


class FilePin(TypedDict):
    """One item of ``files[]``: a file the entry loads or ships, pinned by sha256 and size."""

    path: str
    role: FileRole
    sha256: str
    size: int


class Provenance(TypedDict, total=False):
    """Where an entry came from: a smoke ``generator``, a real ``exporter``, or ``adopted`` by migrate."""

    tools: dict[str, str]
    generator: str
    exporter: str
    seed: int
    adopted: dict[str, Any]
    upstream: list[dict[str, Any]]


class EntryV1(TypedDict, total=False):
    """A VMAFx schema_version 0/1 row (``$defs/legacy_entry``; required: id, kind, onnx, sha256)."""

    id: str
    kind: Kind
    onnx: str
    sha256: str
    opset: int
    notes: str
    smoke: bool
    quant_mode: QuantMode
    quant_calibration_set: str
    int8_sha256: str
    quant_accuracy_budget_plcc: float
    license: str
    license_url: str
    sigstore_bundle: str
    description: str


class EntryV2(TypedDict, total=False):
    """A schema_version 2 row (``$defs/entry``; required: id, kind, onnx, sha256, license, smoke, files, io, provenance)."""

    id: str
    kind: Kind
    family: str
    onnx: str
    sha256: str
    size: int
    opset: int
    notes: str
    description: str
    smoke: bool
    placeholder_for: str
    license: str
    license_url: str
    license_notes: str
    quant_mode: QuantMode
    quant_calibration_set: str
    quant_gate_inputs: str
    int8_sha256: str
    quant_accuracy_budget_plcc: float
    fp16_sha256: str
    sigstore_bundle: str
    files: list[FilePin]
    io: dict[str, Any]
    input_conventions: dict[str, Any]
    provenance: Provenance
    # written by tinyreg beside the schema's own fields
    quant: dict[str, Any]
    fp16: dict[str, Any]  # the fp16 sibling's gate record
    parity: dict[str, Any]


# A row read from a document: the schema_version 2 shape (a v1 row's keys are a subset of it)
Row = EntryV2


def is_smoke(entry: Mapping[str, Any]) -> bool:
    """A random-weight smoke placeholder (``smoke: true``; an absent or false flag is a real model)."""
    return entry.get("smoke") is True


def has_int8(entry: Mapping[str, Any]) -> bool:
    """An int8 sibling is pinned (``int8_sha256``)."""
    return isinstance(entry.get("int8_sha256"), str)


def declares_int8(entry: Mapping[str, Any]) -> bool:
    """The row claims an int8 sibling: pinned, or a quantisation mode that makes one."""
    return has_int8(entry) or entry.get("quant_mode") in INT8_MODES


def has_signature(entry: Mapping[str, Any]) -> bool:
    """The row names a signature bundle (``sigstore_bundle``); whether it verifies is another question."""
    return isinstance(entry.get("sigstore_bundle"), str)


def is_adopted(entry: Mapping[str, Any]) -> bool:
    """Adopted from a VMAFx v0/1 registry by ``tinyreg migrate`` (its provenance is in its notes and sidecar)."""
    prov = entry.get("provenance")
    return isinstance(prov, dict) and "adopted" in prov


def pinned_files(entry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``files[]`` by path (items that are not objects with a string path are left out)."""
    files = entry.get("files")
    return {f["path"]: f for f in files if isinstance(f, dict) and isinstance(f.get("path"), str)} if isinstance(files, list) else {}
