"""``tinyreg pin``: recompute pins and write them through the one writer."""

from __future__ import annotations

from pathlib import Path

from registry.store.document import read_registry, reading, transaction
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
            before = dict(reg.get(eid))
            after = refresh_entry(reg, eid)
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            if changed:
                out[eid] = changed
        return out
