"""``tinyreg pin``: recompute pins and write them through the one writer."""

from __future__ import annotations

from pathlib import Path

from registry.store.document import Entry, read_registry, reading, transaction
from registry.store.entries import refresh_entry
from registry.store.pins import changed_fields, compute_pins


def _check(registry_path: Path, entry_id: str | None) -> dict[str, list[str]]:
    from registry.store.card import card_state
    from registry.store.schema import require_valid_registry

    reg = read_registry(registry_path)
    require_valid_registry(reg.doc, str(registry_path))
    ids = [entry_id] if entry_id else reg.ids()
    out: dict[str, list[str]] = {}
    for eid in ids:
        entry = reg.get(eid)
        changed = changed_fields(entry, compute_pins(reg, entry))
        if not reg.is_legacy and card_state(reg.root, entry) != "ok":
            changed.append("card")
        if changed:
            out[eid] = changed
    return out


def pin(registry_path: Path, entry_id: str | None, *, check: bool = False) -> dict[str, list[str]]:
    """Entry id -> fields that changed (or would change with ``check``)."""
    if check:
        with reading(registry_path):  # many files read: under the shared lock, like verify
            return _check(registry_path, entry_id)
    with transaction(registry_path) as reg:
        ids = [entry_id] if entry_id else reg.ids()
        out = {}
        for eid in ids:
            entry = reg.get(eid)
            before = dict(entry)
            pins = compute_pins(reg, entry)  # every model hashed and parsed once
            _drop_stale_int8_gate(entry, pins)
            after = refresh_entry(reg, eid, pins)
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            if changed:
                out[eid] = changed
        return out


def _drop_stale_int8_gate(entry: Entry, pins: Entry) -> None:
    """A re-pinned int8 sibling (or fp32 model) was not judged by the recorded int8 gate: drop the record.

    The int8 record names no file, so keeping it would let a replaced sibling score as gated; without it the
    sibling is refused until the gate runs again. (The fp16 record names the files it judged and is refused
    by itself.)
    """
    quant = entry.get("quant")
    if not isinstance(entry.get("int8_sha256"), str) or not isinstance(quant, dict) or "gate" not in quant:
        return
    if pins.get("int8_sha256") != entry.get("int8_sha256") or pins.get("sha256") != entry.get("sha256"):
        entry["quant"] = {k: v for k, v in quant.items() if k != "gate"}
