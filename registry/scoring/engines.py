"""Where the pairs of a dataset run are scored: in this process, a local process pool, or a Ray cluster.

Every engine runs the same ``PairWorker``: it loads the model once through ``registry.load``
(verified bytes, the signature policy of the registry) and scores whole pairs frame by frame.
Engines hand back outcomes in the order of the pairs they were given, so every engine writes
the same records in the same order.
"""

from __future__ import annotations

import json
import os
import queue
import warnings
from collections.abc import Callable, Generator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.store.document import Entry

from registry.errors import Error, UsageError
from registry.media.limits import DEFAULT_MAX_PIXELS
from registry.media.video import Scale, Selection
from registry.scoring.manifest import PairSpec
from registry.scoring.results import PairOutcome

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class ScoreConfig:
    """Everything a worker needs to score pairs; plain data, so it pickles to any process or node."""

    registry: str
    entry_id: str
    family: str
    int8: bool = False  # the older spelling of precision='int8'
    provider: str = "cpu"
    threads: int = 0
    matrix: str = "auto"
    selection: Selection = field(default_factory=Selection)
    scale: Scale = field(default_factory=Scale)
    max_pixels: int | None = DEFAULT_MAX_PIXELS  # frames over this are refused from the header (None: no cap)
    max_memory: int | None = None  # bytes the model may use per worker (None: what is available)
    # the consumer's trust policy as resolved once by the driver: the policy document itself (JSON), never a
    # path or an environment variable the worker would read on its own node; None: the driver found no policy
    trust: str | None = None
    precision: str = "fp32"  # fp32, fp16 or int8: which graph of the entry runs
    decode_ahead: int | None = None  # frames decoded ahead of the model (None: 2 on a GPU provider, 0 on the CPU)
    # the sha256 of the graph the driver verified (the run record's model_sha256): a worker that would load other
    # bytes for this entry (another checkout at the same path on its node, a folder changed mid-run) fails
    model_sha256: str | None = None

    @property
    def effective_precision(self) -> str:
        from registry.runtime.precision import parse_precision

        return parse_precision(self.precision, int8=self.int8)


def check_int8(entry: Entry) -> None:
    """Refuse int8 scoring unless the entry has an int8 sibling whose recorded gate passed."""
    check_precision(entry, "int8")


def check_precision(entry: Mapping[str, Any], precision: str) -> None:
    """Refuse scoring at ``precision`` unless the entry has that sibling and its recorded gate passed."""
    from registry.runtime.precision import select_graph

    select_graph(entry, precision)


def providers_for(provider: str) -> list[Any]:
    """onnxruntime providers for ``cpu`` or ``cuda`` (``tensorrt`` needs the graph: ``registry.runtime.providers.plan``).

    Refused where this onnxruntime cannot run the provider.
    """
    from registry.runtime.providers import check_provider, plan

    check_provider(provider)
    if provider == "tensorrt":
        from registry.runtime.providers import PROVIDERS, available_providers

        have = available_providers()
        if PROVIDERS["tensorrt"] not in have:
            plan("tensorrt", available=have)  # raises the one-line refusal
        return []
    return plan(provider).providers


def _session_options(cfg: ScoreConfig) -> Any:
    from registry.scoring.score import provider_session_options

    return provider_session_options(cfg.provider, cfg.threads)


class PairWorker:
    """Loads the model once; scores one pair at a time."""

    def __init__(self, cfg: ScoreConfig) -> None:
        from registry.scoring.score import Scorer
        from registry.signing.policy import policy_from_document

        self.cfg = cfg
        self.scorer = Scorer(Path(cfg.registry), cfg.entry_id, precision=cfg.effective_precision, provider=cfg.provider,
                             session_options=_session_options(cfg), max_memory=cfg.max_memory,
                             trust=policy_from_document(cfg.trust))
        if cfg.model_sha256 is not None and self.scorer.graph.sha256 != cfg.model_sha256:
            from registry.errors import IntegrityError

            raise IntegrityError(f"{cfg.registry}: entry '{cfg.entry_id}' here is not the model this run verified and "
                                 f"records (sha256 {self.scorer.graph.sha256[:16]}..., the driver's "
                                 f"{cfg.model_sha256[:16]}...); a worker never scores other bytes under its name")

    def run(self, spec: PairSpec, on_frame: Callable[[], None] | None = None) -> PairOutcome:
        from registry.media.video import aligned_frames, open_video
        from registry.scoring.prefetch import DEFAULT_DEPTH, prefetch
        from registry.scoring.results import fingerprint

        ahead = self.cfg.decode_ahead
        if ahead is None:
            ahead = DEFAULT_DEPTH if self.cfg.provider in ("cuda", "tensorrt") else 0
        inputs = fingerprint(spec.ref, spec.dist)  # what the scores are of (read before the frames are)
        out = PairOutcome(spec.pair, inputs=inputs)
        try:
            with open_video(spec.ref, self.cfg.matrix, max_pixels=self.cfg.max_pixels) as a, \
                    open_video(spec.dist, self.cfg.matrix, max_pixels=self.cfg.max_pixels) as b:
                for i, x, y in prefetch(aligned_frames(a, b, self.cfg.selection, self.cfg.scale), ahead):
                    out.scores.append((i, self.scorer.score(x, y, f"{spec.pair}: frame {i}")))
                    if on_frame:
                        on_frame()
            if not out.scores:
                raise UsageError("no frames selected")
        except Error as exc:
            return PairOutcome(spec.pair, error=exc.diagnostics(), inputs=inputs)
        except Exception as exc:  # a decoder or model failure on one pair must not end the run
            return PairOutcome(spec.pair, error=f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                               inputs=inputs)
        return out


def split_cores(workers: int, cores: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker) with workers x threads = cores (workers 0: one per core)."""
    cores = cores or os.cpu_count() or 1
    w = cores if workers <= 0 else workers
    return w, max(1, cores // w)


# ---------------------------------------------------------------- local: this process or a process pool

_WORKER: PairWorker | None = None
_FATAL: Error | None = None
_TICKS: Any = None


def _init_pool_worker(cfg: ScoreConfig, ticks: Any) -> None:
    global _WORKER, _TICKS, _FATAL
    _TICKS = ticks
    try:
        _WORKER = PairWorker(cfg)
    except Error as exc:  # e.g. the policy refuses the model: fail the run with this error, not a broken pool
        _FATAL = exc


def _pool_run(spec: PairSpec) -> PairOutcome:
    if _FATAL is not None:
        raise _FATAL
    assert _WORKER is not None
    return _WORKER.run(spec, on_frame=lambda: _TICKS.put(1))


def run_local(cfg: ScoreConfig, pairs: list[PairSpec], workers: int,
              on_frames: Callable[[int], None] | None = None) -> Generator[PairOutcome, None, None]:
    """Outcomes in the order of ``pairs``; one worker runs in this process, more in a spawned process pool."""
    if not pairs:
        return
    if workers <= 1:
        w = PairWorker(cfg)
        for spec in pairs:
            yield w.run(spec, on_frame=(lambda: on_frames(1)) if on_frames else None)
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")  # no fork of a process that may hold onnxruntime threads
    ticks = ctx.Queue()

    def drain() -> None:
        n = 0
        try:
            while True:
                n += ticks.get_nowait()
        except queue.Empty:
            pass
        if n and on_frames:
            on_frames(n)

    with ProcessPoolExecutor(max_workers=min(workers, len(pairs)), mp_context=ctx, initializer=_init_pool_worker,
                             initargs=(cfg, ticks)) as pool:
        futures = [pool.submit(_pool_run, spec) for spec in pairs]
        try:
            for fut in futures:
                while not fut.done():
                    wait([fut], timeout=0.25, return_when=FIRST_COMPLETED)
                    drain()
                yield fut.result()
                drain()
        finally:
            for fut in futures:
                fut.cancel()


# ---------------------------------------------------------------- Ray Data


class RayPairScorer:
    """A Ray Data actor: loads the model once, scores a batch of pairs (the callable class of map_batches)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        c = dict(cfg)
        c["selection"] = Selection(**c["selection"])
        c["scale"] = Scale(**c["scale"])
        # an actor that cannot load the model (a refused signature above all) must fail the run, at once: Ray
        # would restart a constructor that raises without end, so the refusal is handed back with the first batch
        self.fatal: dict[str, str] | None = None
        self.worker: PairWorker | None = None
        try:
            self.worker = PairWorker(ScoreConfig(**c))
        except Error as exc:
            self.fatal = {"error": exc.__class__.__name__, "message": exc.diagnostics()}

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        results = []
        if self.worker is None:
            return {"index": list(batch["index"]), "result": [json.dumps({"fatal": self.fatal})] * len(batch["index"])}
        for i, pair, ref, dist in zip(batch["index"], batch["pair"], batch["ref"], batch["dist"], strict=True):
            o = self.worker.run(PairSpec(int(i), str(pair), Path(str(ref)), Path(str(dist))))
            results.append(json.dumps({"pair": o.pair, "scores": o.scores, "error": o.error, "inputs": o.inputs}))
        return {"index": list(batch["index"]), "result": results}


RAY_SCHEDULE_TIMEOUT_S = 300


def ray_schedule_timeout() -> int:
    """Seconds a Ray actor pool may wait to be scheduled: ``$TINYREG_RAY_SCHEDULE_TIMEOUT`` (read when a Ray run starts,
    never at import: a bad value refuses the Ray run with one line naming the variable, not every import), else 300."""
    raw = os.environ.get("TINYREG_RAY_SCHEDULE_TIMEOUT")
    if raw is None:
        return RAY_SCHEDULE_TIMEOUT_S
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 86400:
        raise UsageError(f"TINYREG_RAY_SCHEDULE_TIMEOUT={raw[:20]!r}: seconds, 1 to 86400")
    return value


def ray_plan(cluster_cpus: float, workers: int, threads: int) -> tuple[int, float]:
    """(actors, CPUs per actor) that the cluster can schedule: never more CPUs per actor than it has (an actor asking
    for more waits forever), never more actors than fit beside each other."""
    from registry.errors import UsageError

    if cluster_cpus <= 0:
        raise UsageError("the Ray cluster reports no CPUs; no actor could be scheduled")
    per_actor = float(min(max(1, threads), cluster_cpus))
    return max(1, min(max(1, workers), int(cluster_cpus // per_actor))), per_actor


def _ray_failure(exc: BaseException) -> Error:
    """A Ray failure as one tinyreg line: a tinyreg error raised inside an actor keeps its own words and exit code."""
    from registry.errors import CheckFailed

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, Error):
            return cause
        cause = getattr(cause, "cause", None) or cause.__cause__
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return CheckFailed(f"the ray engine failed ({type(exc).__name__}: {first[:300]})")


def _actor_error(fatal: dict[str, str]) -> Error:
    """The tinyreg error an actor reported (its class by name from registry.errors, else UsageError)."""
    import registry.errors as errors

    cls = getattr(errors, str(fatal.get("error")), None)
    if not (isinstance(cls, type) and issubclass(cls, Error)) or cls in (errors.MissingWeight, errors.MissingDependency):
        cls = UsageError
    return cls(f"a Ray worker refused to run: {fatal.get('message')}")


def run_ray(cfg: ScoreConfig, pairs: list[PairSpec], workers: int, address: str | None = None,
            on_frames: Callable[[int], None] | None = None) -> Generator[PairOutcome, None, None]:
    """Outcomes in the order of ``pairs`` from a Ray Data actor pool of ``workers`` actors.

    ``address`` joins a running cluster (paths in the manifest and the registry must be readable
    on its nodes); without one a local Ray starts with workers x threads CPUs and stops afterwards.
    """
    if not pairs:
        return
    try:
        import ray
        import ray.data
    except ImportError as exc:
        from registry.errors import MissingDependency

        raise MissingDependency("the ray engine", "scale") from exc
    import logging

    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\..*")  # Ray's own, about its own options
    # Ray's notices (token auth, progress bars off) and its tracebacks of a failed task stay in its session logs
    # while the run lasts (the failure itself is tinyreg's one line); the caller's levels come back afterwards
    levels = {name: logging.getLogger(name).level for name in ("ray", "ray.data")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield from _ray_outcomes(ray, cfg, pairs, workers, address, on_frames)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _ray_outcomes(ray: Any, cfg: ScoreConfig, pairs: list[PairSpec], workers: int, address: str | None,
                  on_frames: Callable[[int], None] | None) -> Generator[PairOutcome, None, None]:
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            ray.init(address=address, **kwargs)
        else:
            # a cluster of our own listens on loopback only: nothing on the network can join it or submit work
            ray.init(num_cpus=max(1, workers) * max(1, cfg.threads), _node_ip_address="127.0.0.1", **kwargs)
        started = True
    try:
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        actors, per_actor = ray_plan(float(resources.get("CPU", 0)), workers, cfg.threads)
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        ctx.wait_for_min_actors_s = ray_schedule_timeout()  # a pool that cannot be scheduled fails, never waits forever
        items = [{"index": p.index, "pair": p.pair, "ref": str(p.ref), "dist": str(p.dist)} for p in pairs]
        plain = asdict(cfg)
        # Ray Data restarts a dead actor and retries its task without end by default: a pair that kills the process
        # (a decoder's crash, the OOM killer) was retried for ever, a hang. A dead actor ends the run with one line
        # instead, as a dead pool worker does; rerunning with the same --out resumes it. max_restarts reaches the
        # actors only through map_batches' **ray_remote_args, deprecated in Ray 2.60 (pinned below 2.64, which
        # removes them)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)
            ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                RayPairScorer, fn_constructor_kwargs={"cfg": plain}, batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=per_actor, batch_format="numpy", max_restarts=0)
        rows = iter(ds.iter_rows())
        try:
            while True:
                try:
                    row = next(rows)
                except StopIteration:
                    break
                except Error:
                    raise
                except Exception as exc:  # an actor that died, could not start or be scheduled: one line, not Ray's traceback
                    raise _ray_failure(exc) from exc
                d = json.loads(row["result"])
                if d.get("fatal"):
                    raise _actor_error(d["fatal"])
                o = PairOutcome(d["pair"], [(int(i), float(s)) for i, s in d["scores"]], d["error"], d["inputs"])
                if on_frames:
                    on_frames(len(o.scores))
                yield o
        finally:
            # stop Ray Data's executor and its threads before Ray goes: a thread still iterating when ray.shutdown()
            # runs reaches the shut-down core worker, and Ray then ends the whole process (seen: a pytest worker)
            close = getattr(rows, "close", None)
            if close is not None:
                close()
    finally:
        if started:
            ray.shutdown()
