"""``tinyreg quant-gate``: run the gate over one or every quantised entry."""

from __future__ import annotations

from pathlib import Path

from registry.quant_gate import GateResult, run_gate
from registry.store import read_registry


def quantised_ids(registry_path: Path) -> list[str]:
    reg = read_registry(registry_path)
    return [str(e["id"]) for e in reg.entries if isinstance(e.get("int8_sha256"), str)]


def gate(registry_path: Path, entry_id: str | None, *, seed: int = 0, record: bool = False) -> list[GateResult]:
    reg = read_registry(registry_path)
    ids = [entry_id] if entry_id else quantised_ids(registry_path)
    results = [run_gate(reg, reg.get(i), seed=seed) for i in ids]
    if record:
        from registry.entries import update_entry

        for r in results:
            quant = dict(reg.get(r.entry).get("quant") or {})
            quant["gate"] = r.as_json()
            update_entry(registry_path, r.entry, {"quant": quant})
    return results
