"""int8 commands: quantize and quant-gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from registry.cli import _output as out
from registry.cli._errors import command
from registry.cli._options import EntryIdArg, JsonOpt, OptionalEntryIdArg, QuantMode, RecordOpt, RegistryOpt, find, need_id


@command
def quantize_cmd(
    entry_id: EntryIdArg,
    mode: Annotated[QuantMode | None, typer.Option(help="default: static, falling back to dynamic")] = None,
    calibration: Annotated[Path | None, typer.Option(help="folder of images to calibrate with (default: the family's)")] = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write <basename>.int8.onnx if it passes the gate; record mode, calibration and drop."""
    from registry.quant.quantize import quantize_entry

    entry = quantize_entry(find(registry), entry_id, mode=mode.value if mode else None, calibration_dir=calibration)
    g = entry["quant"]["gate"]
    if as_json:
        out.emit({"entry": entry_id, "quant": entry["quant"]})
    else:
        out.line(f"{entry_id}: {entry['quant_mode']} int8 -> {entry['onnx'][:-5]}.int8.onnx; drop {g['drop']:.5f} "
                   f"(95% CI {g['drop_ci95'][0]:.5f}..{g['drop_ci95'][1]:.5f}, budget {g['budget']})")


@command
def quant_gate_cmd(
    entry_id: OptionalEntryIdArg = None,
    all_: Annotated[bool, typer.Option("--all", help="every quantised entry")] = False,
    seed: Annotated[int, typer.Option(help="input and bootstrap seed")] = 0,
    record: RecordOpt = False,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """int8 vs fp32 on representative inputs; pass only if the 95% upper bound of 1 - PLCC is within budget."""
    from registry.quant.run import gate

    run = gate(find(registry), None if all_ else need_id(entry_id), seed=seed, record=record)
    results = run.results
    if as_json:
        out.emit({"results": [r.as_json() for r in results], "refused": [{"entry": e, "reason": w} for e, w in run.refused]},
                 ok=run.exit_code == 0)
    else:
        for eid, why in run.refused:
            out.warn(f"{eid}: not gated: {why}")
        for r in results:
            out.line(f"{'PASS' if r.passed else 'FAIL'} {r.entry} ({r.mode}): drop {r.drop:.5f}, 95% CI "
                       f"{r.drop_ci95[0]:.5f}..{r.drop_ci95[1]:.5f}, budget {r.budget}; PLCC {r.plcc:.5f} SROCC {r.srocc:.5f} "
                       f"max|d| {r.max_abs_diff:.3g} over {r.samples} pairs")
        if not results and not run.refused:
            out.line("no quantised entries")
    if run.exit_code:
        raise typer.Exit(run.exit_code)
