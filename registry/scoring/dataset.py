"""Score a dataset: every pair of a manifest (or a shard of it) into a resumable results file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import UsageError
from registry.media.limits import DEFAULT_MAX_PIXELS
from registry.media.video import Scale, Selection, check_matrix
from registry.scoring.engines import ENGINES, ScoreConfig, check_precision, providers_for, run_local, run_ray, split_cores
from registry.scoring.manifest import Shard, read_manifest
from registry.scoring.results import ResultsFile, fmt_for, same_inputs
from registry.store.document import Entry, find_registry, read_registry
from registry.store.types import is_smoke

if TYPE_CHECKING:
    from registry.runtime.loader import Trust


@dataclass
class DatasetReport:
    entry: str
    smoke: bool
    out: str
    engine: str
    workers: int
    threads: int
    pairs: int  # in this shard
    skipped: int  # finished by an earlier run
    scored: int = 0
    frames: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)  # closing record of every pair of the shard

    def as_json(self) -> dict[str, Any]:
        return {"entry": self.entry, "smoke": self.smoke, "out": self.out, "engine": self.engine, "workers": self.workers,
                "threads": self.threads, "pairs": self.pairs, "skipped": self.skipped, "scored": self.scored,
                "frames": self.frames, "errors": self.errors}


@dataclass(frozen=True)
class DatasetOptions:
    fmt: str | None = None  # jsonl / csv; default from the --out suffix
    engine: str = "local"
    workers: int = 0  # 0: one per core
    shard: Shard = field(default_factory=Shard)
    selection: Selection = field(default_factory=Selection)
    scale: Scale = field(default_factory=Scale)
    matrix: str = "auto"
    int8: bool = False  # the older spelling of precision='int8'
    provider: str = "cpu"
    precision: str = "fp32"
    ray_address: str | None = None
    cores: int | None = None  # default os.cpu_count()
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    max_memory: int | None = None  # per worker
    trust: Trust = None  # the consumer's trust policy (a file, a TrustPolicy; None: $TINYREG_TRUST if set)
    retry_errors: bool = False  # score again the pairs the file records as errors


def run_record(cfg: ScoreConfig, model_sha256: str) -> dict[str, Any]:
    """What the results of this run are results of: the model actually run (its precision and the sha256 of that
    graph: the fp32 model or its fp16 / int8 sibling) and every option that changes a score."""
    from registry._internal.version import __version__

    precision = cfg.effective_precision
    return {"tinyreg_results": 1, "entry": cfg.entry_id, "family": cfg.family, "model_sha256": model_sha256,
            "int8": precision == "int8",
            "precision": precision, "provider": cfg.provider, "tinyreg": __version__, "matrix": cfg.matrix,
            "selection": asdict(cfg.selection), "scale": asdict(cfg.scale), "max_pixels": cfg.max_pixels,
            "max_memory": cfg.max_memory}


def prepare(registry: Path | None, entry_id: str, opts: DatasetOptions) -> tuple[ScoreConfig, Entry, str]:
    """Check everything that can be checked before any work (entry, precision and its gate, provider, the model's
    bytes and signature under the consumer's policy) and build the worker config, which carries that policy.

    Returns (config, the entry's row as verified, sha256 of the model file the workers will run)."""
    if opts.engine not in ENGINES:
        raise UsageError(f"engine {opts.engine!r}: use {' or '.join(ENGINES)}")
    check_matrix(opts.matrix)
    path = find_registry(registry)
    entry = read_registry(path).get(entry_id)
    if entry.get("kind") != "fr":
        raise UsageError(f"entry '{entry_id}' is not a full-reference model")
    from registry.runtime.precision import parse_precision

    precision = parse_precision(opts.precision, int8=opts.int8)
    if precision != "fp32":
        check_precision(entry, precision)
    providers_for(opts.provider)
    from registry.runtime.loader import env_threads, verified_entry
    from registry.signing.policy import policy_document, resolve_trust

    env_threads()  # a run splits --cores itself, but a bad $TINYREG_THREADS is refused here, before any work, not ignored

    policy = resolve_trust(opts.trust)  # once, here; every worker gets this very policy, never its own environment
    _, verified, model_sha256 = verified_entry(str(entry["id"]), path, precision=precision,
                                               trust=policy if policy else _none())
    threads = split_cores(opts.workers, opts.cores)[1]
    cfg = ScoreConfig(str(path), str(entry["id"]), str(entry.get("family")), precision=precision, provider=opts.provider,
                      threads=threads, matrix=opts.matrix, selection=opts.selection, scale=opts.scale,
                      max_pixels=opts.max_pixels, max_memory=opts.max_memory, trust=policy_document(policy),
                      model_sha256=model_sha256)
    return cfg, verified, model_sha256


def _none() -> Any:
    from registry.signing.policy import NO_POLICY

    return NO_POLICY


@dataclass(frozen=True)
class Probe:
    frames: int | None  # frames the run will score if every pair is readable (None: a container does not say)
    largest: tuple[int, int] | None  # (h, w) of the largest reference frame


def probe(specs: list[Any], sel: Selection, max_pixels: int | None) -> Probe:
    """Open every reference once (headers only) for the progress total and the worker memory plan."""
    from registry.media.video import open_video

    total: int | None = 0
    largest: tuple[int, int] | None = None
    for s in specs:
        try:
            with open_video(s.ref, max_pixels=max_pixels) as v:
                n = sel.expected(v.info.frames)
                if largest is None or v.info.width * v.info.height > largest[0] * largest[1]:
                    largest = (v.info.height, v.info.width)
        except Exception:
            n = 0  # an unreadable pair is recorded as an error, with no frames
        total = None if total is None or n is None else total + n
    return Probe(total, largest)


def auto_workers(family: str, cores: int, largest: tuple[int, int] | None, max_memory: int | None) -> int:
    """One worker per core, but no more than the memory (``max_memory`` or what is available) holds
    at the family's measured estimate for the largest frame."""
    from registry.families import get_family
    from registry.scoring.memory import available_memory

    model = getattr(get_family(family), "score_memory", None)
    budget = max_memory or available_memory()
    if model is None or largest is None or not budget:
        return cores
    return max(1, min(cores, budget // max(1, int(model.estimate(*largest)))))


def _done(record: dict[str, Any] | None, spec: Any, retry_errors: bool) -> bool:
    """A pair is done when its file records it, of these very inputs (and not as an error to retry)."""
    if record is None or (retry_errors and record.get("type") == "error"):
        return False
    return same_inputs(record, spec.ref, spec.dist)


def score_dataset(entry_id: str, manifest: str | os.PathLike[str], out: str | os.PathLike[str],
                  opts: DatasetOptions = DatasetOptions(), *, registry: str | os.PathLike[str] | None = None,
                  on_start: Callable[[int | None], None] | None = None,
                  on_frames: Callable[[int], None] | None = None) -> DatasetReport:
    """Score the shard's pairs not yet in ``out`` with entry ``entry_id``; append each pair's records as it finishes, in manifest order.

    ``registry``: a ``registry.json`` or its folder (None: found as every command finds it).

    ``out`` starts with the run record (shard 0; see scoring/results.py); an existing ``out`` of another
    run (entry, model bytes, provider, options, tinyreg version) is refused. A pair recorded from inputs
    that have changed since is scored again (its new records follow; the last one counts), and with
    ``opts.retry_errors`` so is a pair recorded as an error.

    ``on_start(total_frames or None)`` is called once the work is known; ``on_frames(n)`` as frames are scored.
    A pair that fails is recorded as an ``error`` record and the run goes on.
    """
    if not isinstance(entry_id, str):
        raise TypeError("score_dataset() takes the entry id first and the registry as a keyword: "
                        "score_dataset(ENTRY_ID, MANIFEST, OUT, registry=PATH)")
    manifest, out = Path(manifest), Path(out)
    cfg, entry, model_sha256 = prepare(None if registry is None else Path(registry), entry_id, opts)
    fmt = fmt_for(out, opts.fmt)
    specs = opts.shard.take(read_manifest(manifest))
    cores = opts.cores or os.cpu_count() or 1
    run = run_record(cfg, model_sha256)
    with ResultsFile(out, fmt, run, write_run=opts.shard.index == 0) as results:
        todo = [s for s in specs if not _done(results.done.get(s.pair), s, opts.retry_errors)]
        seen = probe(todo, opts.selection, opts.max_pixels)
        workers = opts.workers if opts.workers > 0 else auto_workers(cfg.family, cores, seen.largest, opts.max_memory)
        workers = max(1, min(workers, len(todo)))  # fewer pairs than workers: the spare cores go to the workers there are
        cfg = replace(cfg, threads=max(1, cores // workers))
        report = DatasetReport(str(entry["id"]), is_smoke(entry), str(out), opts.engine, workers, cfg.threads,
                               len(specs), len(specs) - len(todo))
        if on_start:
            on_start(seen.frames)
        if opts.engine == "ray":
            outcomes = run_ray(cfg, todo, workers, opts.ray_address, on_frames)
        else:
            outcomes = run_local(cfg, todo, workers, on_frames)
        # closed here, not when the generator is collected: a write that fails (disk full) or ^C stops the engine
        # at once (the pool's pending pairs cancelled, Ray Data's iterator closed and ray.shutdown() run) instead
        # of the pool scoring every pair left at interpreter exit, or Ray's atexit shutdown racing its threads
        with contextlib.closing(outcomes):
            for o in outcomes:
                results.write(o)
                report.scored += 1
                report.frames += len(o.scores)
                if o.error is not None:
                    report.errors.append({"pair": o.pair, "error": o.error})
        report.summaries = [results.done[s.pair] for s in specs if s.pair in results.done]
    return report
