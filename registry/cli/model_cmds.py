"""Commands that make and use models: add (smoke), export, parity, score."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from registry.cli import _output as out
from registry.cli._errors import command
from registry.cli._options import JsonOpt, RegistryOpt, find
from registry.errors import EXIT_FINDINGS
from registry.media.limits import DEFAULT_MAX_PIXELS


@command
def add_cmd(
    family: Annotated[str, typer.Argument(help="model family: dists, lpips, ...")],
    registry: RegistryOpt = None,
    entry_id: Annotated[str | None, typer.Option("--id", help="entry id (default: the family's)")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset of the placeholder")] = 17,
    force: Annotated[bool, typer.Option("--force", help="replace a real model by the placeholder")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a family's smoke placeholder ONNX and its registry entry."""
    from registry.export.smoke import add_smoke

    entry = add_smoke(find(registry), family, entry_id=entry_id, opset=opset, force=force)
    if as_json:
        out.print_json(entry)
    else:
        out.line(f"added {entry['id']} (smoke placeholder) -> {entry['onnx']} sha256 {entry['sha256']}")


def _family_hook(family: str, which: str) -> Any:
    from importlib import import_module

    from registry.errors import UsageError
    from registry.families import get_family

    fam = get_family(family)
    spec = getattr(fam, which)
    if not spec:
        raise UsageError(f"family '{family}' has no {which} (only smoke placeholders: tinyreg add {family})")
    mod, _, attr = spec.partition(":")
    try:
        return getattr(import_module(mod), attr)
    except ImportError as exc:
        from registry.errors import MissingDependency

        raise MissingDependency(f"tinyreg {which} {family}", "export") from exc


def _weight_options(family: str, fn: Any, **given: Any) -> dict[str, Any]:
    """The weight options the user gave, refusing those this family's hook does not take."""
    import inspect

    from registry.errors import UsageError

    accepted = inspect.signature(fn).parameters
    out = {k: v for k, v in given.items() if v is not None}
    for k in out:
        if k not in accepted:
            raise UsageError(f"--{k.replace('_', '-')} is not an option of the {family} family")
    return out


@command
def export_cmd(
    family: Annotated[str, typer.Argument(help="model family (dists, lpips)")],
    vgg16: Annotated[str | None, typer.Option("--vgg16", help="VGG-16 state dict: PATH or URL (default: upstream URL)")] = None,
    vgg16_sha256: Annotated[str | None, typer.Option(help="pin for a non-upstream --vgg16 file")] = None,
    alpha_beta: Annotated[str | None, typer.Option("--alpha-beta", help="DISTS weights.pt: PATH or URL")] = None,
    alpha_beta_sha256: Annotated[str | None, typer.Option(help="pin for a non-upstream --alpha-beta file")] = None,
    lin: Annotated[str | None, typer.Option("--lin", help="LPIPS v0.1 linear layers (vgg.pth): PATH or URL")] = None,
    lin_sha256: Annotated[str | None, typer.Option(help="pin for a non-upstream --lin file")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset (17..21); never silently another")] = 17,
    entry_id: Annotated[str | None, typer.Option("--id", help="entry id (default: the family's)")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="download cache (default ~/.cache/tinyreg)")] = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export real weights to ONNX and pin the entry (smoke: false)."""
    export = _family_hook(family, "exporter")
    kwargs: dict[str, Any] = {"opset": opset, "entry_id": entry_id, "cache_dir": cache_dir, "progress": sys.stderr.isatty()}
    kwargs.update(_weight_options(family, export, vgg16=vgg16, vgg16_sha256=vgg16_sha256, alpha_beta=alpha_beta,
                                  alpha_beta_sha256=alpha_beta_sha256, lin=lin, lin_sha256=lin_sha256))
    entry = export(find(registry), **kwargs)
    if as_json:
        out.print_json(entry)
    else:
        out.line(f"exported {entry['id']} -> {entry['onnx']} (opset {entry['opset']}) sha256 {entry['sha256']}")


@command
def parity_cmd(
    family: Annotated[str, typer.Argument(help="model family (dists, lpips)")],
    entry_id: Annotated[str | None, typer.Option("--id", help="entry id (default: the family's)")] = None,
    vgg16: Annotated[str | None, typer.Option("--vgg16", help="the VGG-16 file the entry was exported from")] = None,
    alpha_beta: Annotated[str | None, typer.Option("--alpha-beta", help="the alpha/beta file it was exported from")] = None,
    lin: Annotated[str | None, typer.Option("--lin", help="the LPIPS linear layers it was exported from")] = None,
    pairs: Annotated[int, typer.Option(help="image pairs per size")] = 20,
    size: Annotated[list[str] | None, typer.Option(help="N or HxW; repeatable (default 256)")] = None,
    tolerance: Annotated[float, typer.Option(help="max absolute difference")] = 1e-5,
    record: Annotated[bool, typer.Option(help="record the result in the entry")] = True,
    cache_dir: Annotated[Path | None, typer.Option(help="download cache")] = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare the entry's ONNX with the reference implementation on natural image pairs."""
    import warnings

    from registry.export.parity import parse_size, record_parity, run_parity
    from registry.families import get_family
    from registry.runtime.loader import load
    from registry.store.document import read_registry

    fam = get_family(family)
    hook = _family_hook(family, "parity")
    path = find(registry)
    entry = read_registry(path).get(entry_id or fam.default_id)
    reference, ref_name = hook(entry, cache_dir=cache_dir,
                               **_weight_options(family, hook, vgg16=vgg16, alpha_beta=alpha_beta, lin=lin))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = load(str(entry["id"]), path)
    sizes = [parse_size(s) for s in (size or ["256"])]
    with out.progress("parity") as bar:
        task = bar.add_task("parity", total=pairs * len(sizes))
        result = run_parity(session, entry, reference, ref_name, pairs=pairs, sizes=sizes, tolerance=tolerance,
                            progress=lambda done, total: bar.update(task, completed=done))
    if record:
        record_parity(path, result, model_sha256=str(entry.get("sha256")))
    if as_json:
        out.print_json(result.as_json())
    else:
        out.line(
            f"{'PASS' if result.passed else 'FAIL'}: {result.pairs} pairs ({', '.join(result.sizes)}), "
            f"max |onnx - reference| = {result.max_abs_diff:.3g} (tolerance {result.tolerance:g}), "
            f"identical-image max |score| = {result.identical_max_abs:.3g}; worst: {result.worst_pair}"
        )
    if not result.passed:
        raise typer.Exit(EXIT_FINDINGS)


@command
def score_cmd(
    family: Annotated[str, typer.Argument(help="model family (dists, lpips)")],
    ref_image: Annotated[Path | None, typer.Argument(help="reference image")] = None,
    dist_image: Annotated[Path | None, typer.Argument(help="distorted image")] = None,
    ref: Annotated[Path | None, typer.Option("--ref", help="reference video (.y4m, .mp4, .mkv, ...)")] = None,
    dist: Annotated[Path | None, typer.Option("--dist", help="distorted video")] = None,
    entry_id: Annotated[str | None, typer.Option("--id", help="entry id (default: the family's)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or csv (dataset: jsonl or csv)")] = "json",
    matrix: Annotated[str, typer.Option(help="Y'CbCr matrix of untagged video: auto, bt601, bt709, bt2020")] = "auto",
    registry: RegistryOpt = None,
    manifest: Annotated[Path | None, typer.Option(help="dataset: CSV of ref,dist[,pair] rows (paths relative to it)")] = None,
    results: Annotated[Path | None, typer.Option("--out", help="dataset: results file, resumed if it exists")] = None,
    engine: Annotated[str, typer.Option(help="dataset: local (process pool) or ray")] = "local",
    workers: Annotated[int, typer.Option(help="dataset: parallel workers (0: one per core)")] = 0,
    shard: Annotated[str | None, typer.Option(help="dataset: I/N, score only shard I (0-based) of N")] = None,
    start: Annotated[int, typer.Option(help="dataset: first frame index")] = 0,
    frames: Annotated[int | None, typer.Option(help="dataset: score at most this many frames per pair")] = None,
    every: Annotated[int, typer.Option(help="dataset: score every Nth frame")] = 1,
    scale: Annotated[str, typer.Option(help="dataset: on size mismatch none (error), ref (dist to ref size) or WxH")] = "none",
    int8: Annotated[bool, typer.Option("--int8", help="dataset: score with the entry's gated int8 sibling")] = False,
    provider: Annotated[str, typer.Option(help="dataset: cpu or cuda")] = "cpu",
    ray_address: Annotated[str | None, typer.Option(help="dataset: join this Ray cluster (default: start a local one)")] = None,
    max_pixels: Annotated[int, typer.Option(help="refuse images or frames over this many pixels (0: no cap)")] = DEFAULT_MAX_PIXELS,
    max_memory: Annotated[str | None, typer.Option(
        help="memory the model may use, e.g. 8G (default: refuse sizes whose estimate exceeds the available memory)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score two images, two videos frame by frame, or a dataset (--manifest) into a results file."""
    from registry.errors import UsageError
    from registry.scoring.memory import parse_bytes
    from registry.scoring.score import score_images, score_videos

    if max_pixels < 0:
        raise UsageError("--max-pixels must be 0 (no cap) or positive")
    limits: dict[str, Any] = {"max_pixels": max_pixels or None, "max_memory": parse_bytes(max_memory) if max_memory else None}
    path = find(registry)
    if manifest is not None:
        from registry.cli._dataset import score_manifest

        return score_manifest(path, entry_id or family, manifest, results, as_json=as_json, fmt=fmt, engine=engine,
                              workers=workers, shard=shard, start=start, frames=frames, every=every, scale=scale,
                              matrix=matrix, int8=int8, provider=provider, ray_address=ray_address, **limits)
    if fmt not in ("json", "csv"):
        raise UsageError("--format must be json or csv")
    if ref_image and dist_image and not (ref or dist):
        res = score_images(path, family, ref_image, dist_image, entry_id, **limits)
    elif ref and dist and not (ref_image or dist_image):
        with out.progress("frames") as bar:
            task = bar.add_task("frames", total=None)
            res = score_videos(path, family, ref, dist, entry_id, matrix=matrix, **limits,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    else:
        raise UsageError("give REF DIST images, --ref A --dist B videos, or --manifest pairs.csv --out results.jsonl")
    if res.smoke:
        out.warn(f"WARNING: '{res.entry}' is a SMOKE PLACEHOLDER with random weights; these scores mean nothing")
    if fmt == "csv":
        out.raw(res.csv())
    else:
        out.print_json(res.as_json())
