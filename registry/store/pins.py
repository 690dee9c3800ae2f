"""Compute the pins of an entry (sha256, sizes, opset, files) from the files on disk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from registry._internal.hashing import sha256_bytes
from registry._internal.paths import confine
from registry.errors import InputError
from registry.onnx.inspect import inspect_bytes
from registry.store import types
from registry.store.document import Entry, Registry
from registry.store.layout import fp16_rel, int8_rel, sidecar_rel
from registry.store.types import declares_int8

# Fields that describe one particular fp32 artifact; reset when it is replaced.
ARTIFACT_FIELDS = ("int8_sha256", "quant_mode", "quant_calibration_set", "quant", "fp16_sha256", "fp16", "parity",
                   "sigstore_bundle")


@dataclass(frozen=True)
class FilePin:
    path: str
    role: str
    sha256: str
    size: int

    def as_json(self) -> types.FilePin:
        return {"path": self.path, "role": cast(types.FileRole, self.role), "sha256": self.sha256, "size": self.size}


def _model_pins(reg: Registry, rel: str, role: str, ext_role: str) -> tuple[list[FilePin], int | None]:
    data = reg.read_bytes(rel)  # as this update leaves it: staged bytes first
    d = sha256_bytes(data)
    info = inspect_bytes(data, rel)
    pins = [FilePin(rel, role, d.sha256, d.size)]
    folder = str(Path(rel).parent)
    # every external reference the one walk finds (initializers, sparse tensors, attributes, subgraphs, functions)
    for loc in sorted({e.location for e in info.external}):
        ext_rel = loc if folder == "." else f"{folder}/{loc}"
        confine(reg.root, ext_rel, what="external data")
        e = reg.digest(ext_rel)
        pins.append(FilePin(ext_rel, ext_role, e.sha256, e.size))
    return pins, info.opset


def compute_pins(reg: Registry, entry: Entry) -> Entry:
    """The fields ``pin`` would write for ``entry`` (nothing is written here)."""
    rel = str(entry["onnx"])
    pins, opset = _model_pins(reg, rel, "onnx", "external_data")
    fields: Entry = {"sha256": pins[0].sha256}
    if opset is not None:
        fields["opset"] = opset
    int8 = int8_rel(rel)
    if declares_int8(entry):
        if not reg.exists(int8):
            raise InputError(f"{int8}: the entry declares an int8 sibling but the file is missing")
        ipins, _ = _model_pins(reg, int8, "int8", "int8_external_data")
        fields["int8_sha256"] = ipins[0].sha256
        pins += ipins
    if isinstance(entry.get("fp16_sha256"), str):
        half = fp16_rel(rel)
        if not reg.exists(half):
            raise InputError(f"{half}: the entry declares an fp16 sibling but the file is missing")
        hpins, _ = _model_pins(reg, half, "fp16", "fp16_external_data")
        fields["fp16_sha256"] = hpins[0].sha256
        pins += hpins
    if reg.is_legacy:
        return fields
    fields["size"] = pins[0].size
    calib, bundle = entry.get("quant_calibration_set"), entry.get("sigstore_bundle")
    # (path, role, pinned even when absent: a missing calibration set is an error, a missing sidecar or bundle is not pinned)
    gate_inputs = entry.get("quant_gate_inputs")
    for other, role, required in ((sidecar_rel(rel), "sidecar", False), (calib, "calibration", True),
                                  (gate_inputs, "gate_inputs", True), (bundle, "signature", False)):
        if isinstance(other, str):
            confine(reg.root, other, what=role)
            if required or reg.exists(other):
                d = reg.digest(other)
                pins.append(FilePin(other, role, d.sha256, d.size))
    fields["files"] = [p.as_json() for p in sorted(pins, key=lambda p: p.path)]
    return fields


def changed_fields(entry: Entry, fields: Mapping[str, Any]) -> list[str]:
    return sorted(k for k, v in fields.items() if entry.get(k) != v)
