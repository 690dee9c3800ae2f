"""``tinyreg quant-gate``: run the gate over one or every quantised entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from registry.errors import Error, UsageError
from registry.quant.gate import GateResult, require_trusted, run_gate
from registry.store.document import read_registry


@dataclass
class GateRun:
    results: list[GateResult] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (entry, why it could not be gated)
    needs_inputs: list[str] = field(default_factory=list)  # refused entries that a gate input set would let through

    @property
    def exit_code(self) -> int:
        if any(not r.passed for r in self.results):
            return 1
        return 2 if self.refused else 0


def quantised_ids(registry_path: Path, precision: str = "int8") -> list[str]:
    from registry.runtime.precision import sibling_sha256

    reg = read_registry(registry_path)
    return [str(e["id"]) for e in reg.entries if sibling_sha256(e, precision) is not None]


def _gate_one(registry_path: Path, entry_id: str, seed: int, inputs: Path | None, precision: str) -> GateResult:
    """A family entry on its family's representative inputs; any other on its (given or pinned) input set."""
    reg = read_registry(registry_path)
    entry = reg.get(entry_id)
    if inputs is not None or not isinstance(entry.get("family"), str):
        from registry.quant.inputs import gate_on_inputs

        return gate_on_inputs(registry_path, entry_id, inputs=inputs, seed=seed, precision=precision)
    return run_gate(reg, entry, seed=seed, precision=precision)


def gate(registry_path: Path, entry_id: str | None, *, seed: int = 0, record: bool = False,
         inputs: Path | None = None, precision: str = "int8", trust: Any = None) -> GateRun:
    """Gate one entry (its errors raise) or, with ``entry_id=None``, every one with a sibling of ``precision``.

    ``precision``: 'int8' (default) or 'fp16'. ``inputs``: an input set (.npz) for one entry; it is pinned in
    the entry and reused by later gates. ``trust``: a consumer policy (default ``$TINYREG_TRUST``) every model
    gated must verify under first.
    """
    if precision not in ("int8", "fp16"):
        raise UsageError(f"precision {precision!r}: the gate judges int8 or fp16 siblings")
    require_trusted(registry_path, quantised_ids(registry_path, precision) if entry_id is None else [entry_id], trust,
                    sibling=precision)
    from registry.quant.inputs import NoGateInputs

    run = GateRun()
    read = read_registry(registry_path)  # the rows the gates compute from: a record lands only onto the same row
    if entry_id is not None:
        run.results.append(_gate_one(registry_path, entry_id, seed, inputs, precision))
    else:
        if inputs is not None:
            raise UsageError("an input set belongs to one entry; name the entry")
        for i in quantised_ids(registry_path, precision):
            try:
                run.results.append(_gate_one(registry_path, i, seed, None, precision))
            except NoGateInputs as exc:
                run.refused.append((i, exc.diagnostics()))
                run.needs_inputs.append(i)
            except Error as exc:
                run.refused.append((i, exc.diagnostics()))
    if record:
        from registry.store.entries import update_entry

        block, digest = ("fp16", "fp16_sha256") if precision == "fp16" else ("quant", "int8_sha256")
        for r in run.results:
            gated = read.get(r.entry)
            rec: dict[str, Any] = dict(cast("dict[str, Any]", gated).get(block) or {})
            rec["gate"] = r.as_json()
            # the gate ran on these models, budget and contract: record only if they are still the entry's. The input
            # set too, unless it was given now (then the gate pinned it itself, in its own update, just before)
            budget_key = "fp16_accuracy_budget_plcc" if precision == "fp16" else "quant_accuracy_budget_plcc"
            keys = ["sha256", digest, budget_key, "quant_mode", "family", "io"]
            if inputs is None:
                keys += ["quant_gate_inputs", "files"]
            update_entry(registry_path, r.entry, {block: rec}, expect={r.entry: {k: gated.get(k) for k in keys}})
    return run
