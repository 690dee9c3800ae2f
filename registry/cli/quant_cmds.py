"""Reduced-precision commands: quantize (int8, fp16) and quant-gate."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from registry.cli import _output as out
from registry.cli._errors import command
from registry.cli._options import (
    AllOpt,
    EntryIdArg,
    GatedPrecision,
    JsonOpt,
    OptionalEntryIdArg,
    QuantMode,
    RecordOpt,
    RegistryOpt,
    TrustOpt,
    find,
    need_id,
)
from registry.cli._output import Result

INPUTS_HINT = "pass --inputs FILE.npz"
InputsOpt = Annotated[Path | None, typer.Option("--inputs", help="gate input set (.npz, one array per model input, samples "
                                                "along the first axis) for an entry without a family; pinned and reused")]


@contextlib.contextmanager
def _inputs_hint() -> Iterator[None]:
    """The library names no CLI flag; here the missing input set gets the option that supplies it."""
    from registry.quant.inputs import NoGateInputs

    try:
        yield
    except NoGateInputs as exc:
        raise NoGateInputs(f"{exc.diagnostics()} ({INPUTS_HINT})") from exc


@command
def quantize_cmd(
    entry_id: EntryIdArg,
    mode: Annotated[QuantMode | None, typer.Option(help="int8: static or dynamic (default: static, falling back to "
                                                  "dynamic); fp16: the fp16 sibling")] = None,
    calibration: Annotated[Path | None, typer.Option(help="folder of images to calibrate with (default: the family's)")] = None,
    inputs: InputsOpt = None,
    registry: RegistryOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write <basename>.int8.onnx (or .fp16.onnx with --mode fp16) if it passes the gate; record mode, settings and gate."""
    from registry.quant.quantize import quantize_entry

    with _inputs_hint():
        entry = quantize_entry(find(registry), entry_id, mode=mode.value if mode else None, calibration_dir=calibration,
                               inputs=inputs, trust=trust)
    if mode is QuantMode.FP16:
        g = entry["fp16"]["gate"]
        out.render(Result({"entry": entry_id, "fp16": entry["fp16"]}).line(
            f"{entry_id}: fp16 -> {entry['onnx'][:-5]}.fp16.onnx; drop = 1 - PLCC against fp32 = {out.num(g['drop'], 3)} "
            f"(95% CI upper {out.num(g['drop_ci95'][1], 3)}, budget {out.num(g['budget'], 3)}), max |fp16 - fp32| "
            f"{out.num(g['max_abs_diff'], 3)} (limit {out.num(g['max_abs_budget'], 3)})"))
        return
    g = entry["quant"]["gate"]
    lo, hi = g["drop_ci95"]
    samples = f" on {g['samples']} samples" if "samples" in g else ""
    placeholder = ("; the weights are a SMOKE PLACEHOLDER (random), so this says nothing about the real model"
                   if entry.get("smoke") is True else "")
    out.render(Result({"entry": entry_id, "quant": entry["quant"]}).line(
        f"{entry_id}: {entry['quant_mode']} int8 -> {entry['onnx'][:-5]}.int8.onnx; drop = 1 - PLCC against fp32{samples} "
        f"= {out.num(g['drop'], 3)} (95% CI {out.num(lo, 3)}..{out.num(hi, 3)}), within the budget {out.num(g['budget'], 3)}"
        f"{placeholder}"))


@command
def quant_gate_cmd(
    entry_id: OptionalEntryIdArg = None,
    all_: AllOpt = False,
    seed: Annotated[int, typer.Option(help="input and bootstrap seed")] = 0,
    record: RecordOpt = False,
    inputs: InputsOpt = None,
    precision: Annotated[GatedPrecision, typer.Option(help="which sibling to gate")] = GatedPrecision.INT8,
    registry: RegistryOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """int8 (or fp16) vs fp32 on representative inputs; pass only if the 95% upper bound of 1 - PLCC is within budget
    (fp16: and every |score error| within the limit)."""
    from registry.quant.run import gate

    path = find(registry)
    with _inputs_hint():
        run = gate(path, None if all_ else need_id(entry_id), seed=seed, record=record, inputs=inputs,
                   precision=precision.value, trust=trust)
    run.refused = [(e, f"{w} ({INPUTS_HINT})" if e in run.needs_inputs else w) for e, w in run.refused]
    results = run.results
    res = Result({"results": [r.as_json() for r in results], "refused": [{"entry": e, "reason": w} for e, w in run.refused]},
                 ok=run.exit_code == 0, code=run.exit_code)
    smoke = _smoke_entries(registry)
    for eid, why in run.refused:
        res.notes.append(f"{eid}: not gated: {why}")
    from registry.cli._text import gate_words

    for r in results:
        res.line(f"{'PASS' if r.passed else 'FAIL'} {gate_words(r)}"
                 + ("; the weights are a SMOKE PLACEHOLDER (random): this measures the quantiser, not the model"
                    if r.entry in smoke else ""))
    if not results and not run.refused:
        res.line("no quantised entries" if precision is GatedPrecision.INT8 else "no entries with an fp16 sibling")
    out.render(res)


def _smoke_entries(registry: Path | None) -> set[str]:
    from registry.store.document import read_registry

    try:
        return {str(e.get("id")) for e in read_registry(find(registry)).entries if e.get("smoke") is True}
    except Exception:  # the gate has already read the registry; this only adds words
        return set()
