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


def _trusted(path: Path, ids: list[str], trust: Path | None, *, int8: bool, precision: str = "int8") -> None:
    """With a consumer policy (--trust or TINYREG_TRUST), the models a quant command runs must verify under it first."""
    from registry.runtime.loader import verified_entry
    from registry.signing.policy import resolve_trust

    policy = resolve_trust(trust)
    if policy is None:
        return
    for eid in ids:
        verified_entry(eid, path, trust=policy)
        if int8:
            verified_entry(eid, path, precision=precision, trust=policy)


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

    _trusted(find(registry), [entry_id], trust, int8=False)
    with _inputs_hint():
        entry = quantize_entry(find(registry), entry_id, mode=mode.value if mode else None, calibration_dir=calibration,
                               inputs=inputs)
    if mode is QuantMode.FP16:
        g = entry["fp16"]["gate"]
        if as_json:
            out.emit({"entry": entry_id, "fp16": entry["fp16"]})
        else:
            out.line(f"{entry_id}: fp16 -> {entry['onnx'][:-5]}.fp16.onnx; drop {g['drop']:.3g} (95% CI upper "
                     f"{g['drop_ci95'][1]:.3g}, budget {g['budget']:g}), max |error| {g['max_abs_diff']:.3g} "
                     f"(limit {g['max_abs_budget']:g})")
        return
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
    inputs: InputsOpt = None,
    precision: Annotated[GatedPrecision, typer.Option(help="which sibling to gate")] = GatedPrecision.INT8,
    registry: RegistryOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """int8 (or fp16) vs fp32 on representative inputs; pass only if the 95% upper bound of 1 - PLCC is within budget
    (fp16: and every |score error| within the limit)."""
    from registry.quant.run import gate, quantised_ids

    path = find(registry)
    _trusted(path, quantised_ids(path, precision.value) if all_ else [need_id(entry_id)], trust, int8=True,
             precision=precision.value)
    with _inputs_hint():
        run = gate(path, None if all_ else need_id(entry_id), seed=seed, record=record, inputs=inputs,
                   precision=precision.value)
    run.refused = [(e, f"{w} ({INPUTS_HINT})" if e in run.needs_inputs else w) for e, w in run.refused]
    results = run.results
    if as_json:
        out.emit({"results": [r.as_json() for r in results], "refused": [{"entry": e, "reason": w} for e, w in run.refused]},
                 ok=run.exit_code == 0)
    else:
        for eid, why in run.refused:
            out.warn(f"{eid}: not gated: {why}")
        for r in results:
            over = getattr(r, "over", None)
            what = (f"over all output elements of {r.samples} samples (image-like output)" if over == "elements"
                    else f"over {r.samples} samples" if over == "samples" else f"over {r.samples} pairs")
            inputs_rel = str(getattr(r, "inputs", "") or "")
            src = f" [inputs {inputs_rel}]" if inputs_rel else ""
            if r.nonfinite:
                out.line(f"FAIL {r.entry} ({r.mode}): {r.nonfinite} non-finite outputs {what}{src}")
                continue
            if r.precision == "fp16":  # drops of 1e-7: the int8 format would print zeros
                out.line(f"{'PASS' if r.passed else 'FAIL'} {r.entry} (fp16): drop {r.drop:.3g}, 95% CI {r.drop_ci95[0]:.3g}.."
                         f"{r.drop_ci95[1]:.3g}, budget {r.budget:g}; PLCC {r.plcc:.7f} SROCC {r.srocc:.5f} max|d| "
                         f"{r.max_abs_diff:.3g} (limit {r.max_abs_budget:g}) {what}{src}")
                continue
            out.line(f"{'PASS' if r.passed else 'FAIL'} {r.entry} ({r.mode}): drop {r.drop:.5f}, 95% CI "
                       f"{r.drop_ci95[0]:.5f}..{r.drop_ci95[1]:.5f}, budget {r.budget}; PLCC {r.plcc:.5f} SROCC {r.srocc:.5f} "
                       f"max|d| {r.max_abs_diff:.3g} {what}{src}")
        if not results and not run.refused:
            out.line("no quantised entries" if precision is GatedPrecision.INT8 else "no entries with an fp16 sibling")
    if run.exit_code:
        raise typer.Exit(run.exit_code)
