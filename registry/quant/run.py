"""``tinyreg quant-gate``: run the gate over one or every quantised entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from registry.errors import Error
from registry.quant.gate import GateResult, run_gate
from registry.store.document import read_registry


@dataclass
class GateRun:
    results: list[GateResult] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (entry, why it could not be gated)

    @property
    def exit_code(self) -> int:
        if any(not r.passed for r in self.results):
            return 1
        return 2 if self.refused else 0


def quantised_ids(registry_path: Path) -> list[str]:
    reg = read_registry(registry_path)
    return [str(e["id"]) for e in reg.entries if isinstance(e.get("int8_sha256"), str)]


def gate(registry_path: Path, entry_id: str | None, *, seed: int = 0, record: bool = False) -> GateRun:
    """Gate one entry (its errors raise) or, with ``entry_id=None``, every quantised one (errors collected)."""
    reg = read_registry(registry_path)
    run = GateRun()
    if entry_id is not None:
        run.results.append(run_gate(reg, reg.get(entry_id), seed=seed))
    else:
        for i in quantised_ids(registry_path):
            try:
                run.results.append(run_gate(reg, reg.get(i), seed=seed))
            except Error as exc:
                run.refused.append((i, exc.diagnostics()))
    if record:
        from registry.store.entries import update_entry

        for r in run.results:
            gated = reg.get(r.entry)
            quant = dict(gated.get("quant") or {})
            quant["gate"] = r.as_json()
            # the gate ran on these two models: record only if both are still the entry's
            expect = {r.entry: {"sha256": gated.get("sha256"), "int8_sha256": gated.get("int8_sha256")}}
            update_entry(registry_path, r.entry, {"quant": quant}, expect=expect)
    return run
