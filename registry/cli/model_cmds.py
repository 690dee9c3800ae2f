"""Commands that make and use models: add (smoke), export, parity, score.

``add`` and ``export`` take a FAMILY; every other command takes an entry id and reads the
family from the entry.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from registry.cli import _output as out
from registry.cli._errors import command
from registry.cli._options import (
    CacheOpt,
    Engine,
    EntryIdArg,
    FamilyArg,
    JsonOpt,
    Matrix,
    NewIdOpt,
    OpsetOpt,
    Provider,
    RecordOpt,
    RegistryOpt,
    ScoreFormat,
    ScorePrecision,
    TrustOpt,
    WeightOpt,
    find,
    weight_sources,
)
from registry.cli._output import Result
from registry.media.limits import DEFAULT_MAX_PIXELS


@command
def add_cmd(
    family: FamilyArg,
    registry: RegistryOpt = None,
    entry_id: NewIdOpt = None,
    opset: OpsetOpt = 17,
    force: Annotated[bool, typer.Option("--force", help="replace a real model by the placeholder")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a family's smoke placeholder ONNX and its registry entry (a weight-free family: its real entry)."""
    from registry.export.smoke import add_smoke

    entry = add_smoke(find(registry), str(family), entry_id=entry_id, opset=opset, force=force)
    what = "smoke placeholder" if entry.get("smoke") else "real model, no weights"
    out.render(Result({"entry": entry}).line(f"added {entry['id']} ({what}) -> {entry['onnx']} sha256 {entry['sha256']}"))


@command
def export_cmd(
    family: FamilyArg,
    weight: WeightOpt = None,
    opset: OpsetOpt = 17,
    entry_id: NewIdOpt = None,
    cache_dir: CacheOpt = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the family's graph from its pinned weights and write the real entry (smoke: false)."""
    from registry.export.core import export_entry

    entry = export_entry(find(registry), str(family), weights=weight_sources(weight), opset=opset, entry_id=entry_id,
                         cache_dir=cache_dir, progress=sys.stderr.isatty() and not out.is_json())
    out.render(Result({"entry": entry}).line(
        f"exported {entry['id']} -> {entry['onnx']} (opset {entry['opset']}) sha256 {entry['sha256']}"))


@command
def parity_cmd(
    entry_id: EntryIdArg,
    weight: Annotated[list[str] | None, typer.Option("--weight", metavar="KEY=PATH|URL[#SHA256]",
                                                     help="a weight file the entry was built from, when it records a local one")] = None,
    pairs: Annotated[int | None, typer.Option(help="samples per size (default: the family's)")] = None,
    size: Annotated[list[str] | None, typer.Option(help="N or HxW; repeatable (default: the family's)")] = None,
    tolerance: Annotated[float | None, typer.Option(help="max |onnx - reference| (default: the family's)")] = None,
    record: RecordOpt = False,
    cache_dir: CacheOpt = None,
    registry: RegistryOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare the entry's ONNX with its family's reference implementation on representative samples."""
    import warnings

    from registry.export.parity import parity_reference, parse_size, record_parity, run_parity
    from registry.families import get_family
    from registry.runtime.loader import load_entry

    sizes = [parse_size(s) for s in size] if size else None
    path = find(registry)
    with warnings.catch_warnings():  # the trust check first: the family, the reference and the record use its row
        warnings.simplefilter("ignore")
        session, entry = load_entry(entry_id, path, trust=trust)
    verified = entry
    fam = get_family(str(entry.get("family")))
    reference = parity_reference(entry, fam, weight_sources(weight), cache_dir=cache_dir)
    with out.progress("parity") as bar:
        task = bar.add_task("parity", total=None)
        result = run_parity(session, entry, fam, reference, pairs=pairs, sizes=sizes, tolerance=tolerance,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))
    if record:
        record_parity(path, result, row=verified)  # only onto the row whose model parity ran
    placeholder = "; the weights are a SMOKE PLACEHOLDER (random)" if entry.get("smoke") is True else ""
    out.render(Result({"parity": result.as_json(), "recorded": record}, ok=result.passed).line(
        f"{'PASS' if result.passed else 'FAIL'}: {result.pairs} samples ({', '.join(result.sizes)}), "
        f"max |onnx - reference| = {out.num(result.max_abs_diff, 3)} (tolerance {result.tolerance:g}), "
        f"identical inputs max |score - {fam.meta.identical_score:g}| = {out.num(result.identical_max_abs, 3)}; "
        f"worst: {result.worst_pair}{placeholder}"))


IMAGES, VIDEOS, DATASET = "an image pair (REF DIST)", "videos (--ref/--dist)", "a dataset (--manifest)"
_ALL = frozenset({IMAGES, VIDEOS, DATASET})
_FRAMES = frozenset({VIDEOS, DATASET})
# every parameter of ``score`` -> the modes that honour it; given anywhere else it is refused, never ignored
# (tests/cli/test_option_matrix.py holds every option of every command to a row of such a table)
SCORE_MODES: dict[str, frozenset[str]] = {
    "entry_id": _ALL, "registry": _ALL, "as_json": _ALL, "fmt": _ALL, "int8": _ALL, "precision": _ALL, "provider": _ALL,
    "max_pixels": _ALL, "max_memory": _ALL,
    "ref_image": frozenset({IMAGES}), "dist_image": frozenset({IMAGES}),
    "ref": frozenset({VIDEOS}), "dist": frozenset({VIDEOS}),
    "matrix": _FRAMES, "start": _FRAMES, "frames": _FRAMES, "every": _FRAMES, "scale": _FRAMES,
    "manifest": frozenset({DATASET}), "results": frozenset({DATASET}), "engine": frozenset({DATASET}),
    "workers": frozenset({DATASET}), "shard": frozenset({DATASET}),
    "ray_address": frozenset({DATASET}), "retry_errors": frozenset({DATASET}), "trust": _ALL,
}


def _given(ctx: Any, defaults: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """Parameters the user gave: from the command line or environment where click knows, else those off their default."""
    out_: list[str] = []
    for name, value in values.items():
        src = ctx.get_parameter_source(name) if ctx is not None else None
        if src is not None:
            if src.name in ("COMMANDLINE", "ENVIRONMENT"):
                out_.append(name)
        elif value != defaults.get(name):
            out_.append(name)
    return out_


def _flag(ctx: Any, name: str) -> str:
    for p in ctx.command.params if ctx is not None else []:
        if p.name == name:
            return str(p.opts[0]) if p.param_type_name == "option" else str(getattr(p, "metavar", None) or name).upper()
    return "--" + name.replace("_", "-")


def refuse_inapplicable(mode: str, given: list[str], ctx: Any = None) -> None:
    """One line for the first given option that ``mode`` does not honour, saying where it applies."""
    from registry.errors import UsageError

    for name in given:
        modes = SCORE_MODES[name]
        if mode not in modes:
            where = " and ".join(m for m in (IMAGES, VIDEOS, DATASET) if m in modes)
            raise UsageError(f"{_flag(ctx, name)} applies to {where}, not to {mode}")


MAX_COUNT = 1 << 40  # numeric options (pixels, frames, workers) beyond this are typos, never intent


@command
def score_cmd(
    ctx: typer.Context,
    entry_id: EntryIdArg,
    ref_image: Annotated[Path | None, typer.Argument(help="reference image", show_default=False)] = None,
    dist_image: Annotated[Path | None, typer.Argument(help="distorted image", show_default=False)] = None,
    ref: Annotated[Path | None, typer.Option("--ref", help="reference video (.y4m, .mp4, .mkv, ...)")] = None,
    dist: Annotated[Path | None, typer.Option("--dist", help="distorted video")] = None,
    fmt: Annotated[ScoreFormat | None, typer.Option(
        "--format", help="stdout: json (as --json) or csv (one row per frame); dataset results file: jsonl or csv "
                         "(default: a line for people; the results file's format from its name)")] = None,
    matrix: Annotated[Matrix, typer.Option(help="Y'CbCr matrix of untagged video (RGB families)")] = Matrix.AUTO,
    registry: RegistryOpt = None,
    manifest: Annotated[Path | None, typer.Option(help="dataset: CSV of ref,dist[,pair] rows (paths relative to it)")] = None,
    results: Annotated[Path | None, typer.Option("--out", help="dataset: results file, resumed if it exists")] = None,
    engine: Annotated[Engine, typer.Option(help="dataset: local (process pool) or ray")] = Engine.LOCAL,
    workers: Annotated[int, typer.Option(help="dataset: parallel workers (0: one per core)")] = 0,
    shard: Annotated[str | None, typer.Option(help="dataset: I/N, score only shard I (0-based) of N")] = None,
    start: Annotated[int, typer.Option(help="dataset: first frame index")] = 0,
    frames: Annotated[int | None, typer.Option(help="dataset: score at most this many frames per pair")] = None,
    every: Annotated[int, typer.Option(help="dataset: score every Nth frame")] = 1,
    scale: Annotated[str, typer.Option(help="dataset: on size mismatch none (error), ref (dist to ref size) or WxH")] = "none",
    precision: Annotated[ScorePrecision, typer.Option(
        help="which graph runs: fp32, or the entry's gated fp16 or int8 sibling (refused if missing or not passed)")
    ] = ScorePrecision.FP32,
    int8: Annotated[bool, typer.Option("--int8", help="alias of --precision int8")] = False,
    provider: Annotated[Provider, typer.Option(help="cpu, cuda or tensorrt (TensorRT caches: $TINYREG_CACHE_DIR/trt)")
    ] = Provider.CPU,
    ray_address: Annotated[str | None, typer.Option(help="dataset: join this Ray cluster (default: start a local one)")] = None,
    max_pixels: Annotated[int, typer.Option(help="refuse images or frames over this many pixels (0: no cap)")] = DEFAULT_MAX_PIXELS,
    max_memory: Annotated[str | None, typer.Option(
        help="memory the model may use, e.g. 8G (default: refuse sizes whose estimate exceeds the available memory)")] = None,
    trust: TrustOpt = None,
    retry_errors: Annotated[bool, typer.Option("--retry-errors", help="dataset: score again the pairs --out records as errors")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Score two images, two videos frame by frame, or a dataset (--manifest) into a results file, with any entry."""
    from registry.errors import UsageError
    from registry.scoring.memory import parse_bytes
    from registry.scoring.score import score_images, score_videos

    for flag, value, low in (("--max-pixels", max_pixels, 0), ("--workers", workers, 0), ("--start", start, 0),
                             ("--every", every, 1), ("--frames", 1 if frames is None else frames, 1)):
        if not low <= value <= MAX_COUNT:
            raise UsageError(f"{flag} {value}: out of range ({low} to {MAX_COUNT})")
    from registry.runtime.precision import parse_precision

    precision_given = _given(ctx, _SCORE_DEFAULTS, {"precision": precision}) == ["precision"]
    if int8 and precision is not ScorePrecision.INT8 and (precision_given or precision is not ScorePrecision.FP32):
        # an explicit --precision fp32 next to --int8 is a contradiction, not a default to override
        raise UsageError(f"--int8 and --precision {precision.value} disagree; give one")
    prec = parse_precision(precision.value, int8=int8)
    limits: dict[str, Any] = {"max_pixels": max_pixels or None, "max_memory": parse_bytes(max_memory) if max_memory else None}
    values = {k: v for k, v in locals().items() if k in SCORE_MODES}
    mode = DATASET if manifest is not None else VIDEOS if (ref is not None or dist is not None) else IMAGES
    refuse_inapplicable(mode, _given(ctx, _SCORE_DEFAULTS, values), ctx)
    path = find(registry)
    if manifest is not None:
        from registry.cli._dataset import score_manifest

        return score_manifest(path, entry_id, manifest, results, fmt=fmt.value if fmt else "json", engine=engine.value,
                              workers=workers, shard=shard, start=start, frames=frames, every=every, scale=scale,
                              matrix=matrix.value, precision=prec, provider=provider.value, ray_address=ray_address,
                              trust=trust, retry_errors=retry_errors, **limits)
    if fmt is ScoreFormat.JSONL:
        raise UsageError("--format jsonl is for dataset results (--manifest); use json or csv")
    if as_json and fmt is ScoreFormat.CSV:
        raise UsageError("choose one output: --json or --format csv")
    if fmt is ScoreFormat.JSON:
        out.begin("score", True)  # --format json: the --json document
    if ref_image and dist_image and not (ref or dist):
        res = score_images(entry_id, ref_image, dist_image, registry=path, precision=prec, provider=provider.value, trust=trust,
                           **limits)
    elif ref and dist and not (ref_image or dist_image):
        from registry.media.video import Scale, Selection

        with out.progress("frames") as bar:
            task = bar.add_task("frames", total=None)
            res = score_videos(entry_id, ref, dist, registry=path, matrix=matrix.value, precision=prec, provider=provider.value,
                               selection=Selection(start, frames, every), scale=Scale.parse(scale), trust=trust, **limits,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    else:
        raise UsageError("give REF DIST images, --ref A --dist B videos, or --manifest pairs.csv --out results.jsonl")
    shown = Result(res.as_json())
    if res.smoke:
        shown.warnings.append(f"WARNING: '{res.entry}' is a SMOKE PLACEHOLDER with random weights; these scores mean nothing")
    if fmt is ScoreFormat.CSV:
        shown.raw(res.csv())
    else:
        shown.line(score_line(res))
    out.render(shown)


def score_line(res: Any) -> str:
    """One line for people, as ffmpeg's SSIM or vmaf's 'VMAF score =' prints: metric, score, direction, precision, entry.

    ``DISTS (VGG-16): 0.0484843 (lower is better \u2193), fp32, entry dists_vgg16``; for a video the mean over its
    frames and the worst frame in the metric's direction; a smoke placeholder says so on the line itself.
    """
    from registry.cli._text import arrow, worst_of
    from registry.families import get_family

    try:
        title = get_family(res.family).meta.title
    except Exception:  # a family that no longer imports still names itself
        title = str(res.family)
    direction = str(res.direction or "direction unknown")
    precision = str(getattr(res, "precision", None) or "fp32")
    if precision == "fp32" and getattr(res, "int8", False):  # --int8, the older spelling of --precision int8
        precision = "int8"
    how = f"({direction} {arrow(direction)})"
    if len(res.scores) == 1:
        what = f"{out.num(res.scores[0], 6)} {how}"
    else:
        import numpy as np

        y = np.asarray(res.scores, np.float64)
        lower = direction.startswith("lower")
        worst = int(np.nanargmax(y) if lower else np.nanargmin(y)) if np.isfinite(y).any() else None
        numbers = res.frame_numbers() if hasattr(res, "frame_numbers") else list(range(len(y)))  # --start/--every keep their numbers
        worst_txt = (f", worst frame {numbers[worst]}: {out.num(float(y[worst]), 6)} ({worst_of(direction)})"
                     if worst is not None else "")
        what = f"mean {out.num(float(np.mean(y)), 6)} over {len(y)} frames {how}{worst_txt}"
    smoke = " -- SMOKE PLACEHOLDER: random weights, the score means nothing" if res.smoke else ""
    return f"{title}: {what}, {precision}, entry {res.entry}{smoke}"


_SCORE_DEFAULTS: dict[str, Any] = {
    name: (p.default if p.default is not inspect.Parameter.empty else None)
    for name, p in inspect.signature(score_cmd).parameters.items()
}
