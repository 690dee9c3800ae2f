"""Create or update an entry with its artifacts, sidecar, pins and card, in one locked step."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry._internal.hashing import sha256_bytes
from registry.errors import SmokeOverwriteError, UsageError
from registry.store.card import write_card
from registry.store.document import Entry, Registry, dumps_json, merge_entry, transaction
from registry.store.layout import sidecar_rel
from registry.store.pins import ARTIFACT_FIELDS, compute_pins
from registry.store.types import FileRole, has_int8, is_smoke

# The VMAFx fork's libvmaf reads a sidecar without a JSON parser: each of these keys as its first
# occurrence anywhere in the text. They lead the document (and "name" is the model's, not the first
# input's inside "io"); everything else follows, sorted.
SIDECAR_LEADING_KEYS = ("name", "kind", "input_name", "output_name", "onnx_opset", "quant_mode")


def sidecar_leading_keys(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """``SIDECAR_LEADING_KEYS``, reordered where a value would come before the key it spells.

    libvmaf needs every one of these keys' first occurrence in the raw text to be the key, and reads
    their values raw (no unescaping), so a value such as an entry id ``quant_mode`` (the value of
    ``"name"``) must follow the key ``"quant_mode"``. A key goes next once its value spells no key still to
    come; an unbreakable cycle keeps the default order (verify reports the misread).
    """
    rest, out = list(SIDECAR_LEADING_KEYS), []
    while rest:
        spelled = {k: json.dumps(doc.get(k), ensure_ascii=True) for k in rest}
        nxt = next((k for k in rest if not any(f'"{o}"' in spelled[k] for o in rest if o != k)), rest[0])
        out.append(nxt)
        rest.remove(nxt)
    return tuple(out)


def sidecar_doc(entry: Mapping[str, Any]) -> dict[str, Any]:
    io = entry["io"]
    opset = entry.get("opset")
    return {
        "name": entry["id"],
        **({"onnx_opset": opset} if isinstance(opset, int) and not isinstance(opset, bool) else {}),
        "tinyreg_sidecar_version": 1,
        "id": entry["id"],
        "kind": entry["kind"],
        "onnx": entry["onnx"],
        "opset": entry.get("opset"),
        "smoke": bool(entry.get("smoke")),
        "input_name": io["inputs"][0]["name"],
        "input_names": [t["name"] for t in io["inputs"]],
        "output_name": io["outputs"][0]["name"],
        "io": io,
        "input_conventions": entry["input_conventions"],
        "quant_mode": entry.get("quant_mode", "fp32"),
        **({"int8_sha256": entry["int8_sha256"]} if has_int8(entry) else {}),
    }


def _check_replace(reg: Registry, fields: Mapping[str, Any], force: bool) -> None:
    old = reg.find(str(fields["id"]))
    if old is not None and is_smoke(fields) and not is_smoke(old) and not force:
        raise SmokeOverwriteError(
            f"entry '{fields['id']}' holds a real (non-smoke) model; refusing to replace it with a "
            "smoke placeholder unless forced", hint="force"
        )


def set_file_pin(entry: Entry, rel: str, role: FileRole, data: bytes) -> None:
    """Pin ``data`` (the bytes just written to ``rel``) in the entry's files, replacing any pin of that path."""
    d = sha256_bytes(data)
    files = [f for f in entry.get("files", []) if f.get("path") != rel]
    files.append({"path": rel, "role": role, "sha256": d.sha256, "size": d.size})
    entry["files"] = sorted(files, key=lambda f: str(f["path"]))


def refresh_entry(reg: Registry, entry_id: str, pins: Entry | None = None) -> Entry:
    """Rewrite the sidecar (v2), recompute every pin and rewrite the card of one entry.

    ``pins``: what ``compute_pins`` just returned for the entry (the caller computed them already).
    """
    entry = reg.get(entry_id)
    entry.update(compute_pins(reg, entry) if pins is None else pins)
    if not reg.is_legacy and entry.get("io") and entry.get("input_conventions"):
        side = sidecar_rel(str(entry["onnx"]))
        doc = sidecar_doc(entry)
        data = dumps_json(doc, sidecar_leading_keys(doc))
        reg.stage(side, data)
        set_file_pin(entry, side, "sidecar", data)
    if not reg.is_legacy:
        write_card(reg, entry)
    return entry


def write_entry(
    registry_path: Path,
    fields: Mapping[str, Any],
    artifacts: Mapping[str, bytes],
    *,
    force: bool = False,
    new_artifact: bool = True,
    expect: Mapping[str, Any] | None = None,
) -> Entry:
    """Write ``artifacts`` (relative path -> bytes), merge ``fields`` and pin, under the lock.

    ``new_artifact`` says the fp32 model changed, so fields describing the old
    one (int8 sibling, parity, signature) are dropped rather than left stale.
    ``expect`` (entry id -> fp32 sha256 the caller computed from) refuses the update
    if that entry changed meanwhile (see ``transaction``).
    """
    with transaction(registry_path, expect=expect) as reg:
        if reg.is_legacy:
            raise UsageError(
                f"{registry_path} is schema_version {reg.schema_version} (VMAFx format); tinyreg writes "
                "entries only into schema_version 2 registries ('tinyreg init' makes one)"
            )
        _check_replace(reg, fields, force)
        old = reg.find(str(fields["id"]))
        old_files = {str(f["path"]): str(f.get("role")) for f in (old or {}).get("files") or [] if isinstance(f, dict)}
        onnx_rel = str(fields.get("onnx", (old or {}).get("onnx", "")))
        changed = new_artifact and (
            old is None or onnx_rel not in artifacts or sha256_bytes(artifacts[onnx_rel]).sha256 != old.get("sha256")
        )
        for rel, data in sorted(artifacts.items()):
            reg.stage(rel, data)
        merged: dict[str, Any] = dict(fields)
        if changed and old is not None:
            for k in ARTIFACT_FIELDS:
                if k not in fields and k in old:
                    merged[k] = None
        merge_entry(reg, merged, force=True)
        entry = refresh_entry(reg, str(fields["id"]))
        if changed:
            _remove_orphans(reg, old_files, entry)
        return entry.copy()


# Files that belong to one fp32 artifact; when it is replaced they would be stale.
_DERIVED_ROLES = ("int8", "int8_external_data", "calibration", "signature")


def _remove_orphans(reg: Registry, old_files: Mapping[str, str], entry: Entry) -> None:
    """Delete derived files (int8, calibration, bundle) the replaced artifact had and the new one does not."""
    now = {str(f["path"]) for f in entry.get("files") or []}
    for rel, role in sorted(old_files.items()):
        if role in _DERIVED_ROLES and rel not in now:
            reg.stage_remove(rel)


def update_entry(
    registry_path: Path, entry_id: str, fields: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None
) -> Entry:
    """Merge ``fields`` into an existing entry (no artifact changes) and refresh pins and card."""
    with transaction(registry_path, expect=expect) as reg:
        reg.get(entry_id)
        merge_entry(reg, {"id": entry_id, **fields}, force=True)
        return refresh_entry(reg, entry_id).copy()
