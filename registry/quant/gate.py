"""The int8-versus-fp32 gate: drop = 1 - PLCC(fp32 scores, int8 scores) on representative inputs.

A verdict must not depend on luck. The gate feeds every input (``ref`` and
``dist``) with the inputs the family declares representative (for full-reference
image metrics: natural images under real distortions, spanning the score
range), enough of them, and passes only when the upper end of a bootstrap 95%
interval of the drop is within the entry's ``quant_accuracy_budget_plcc``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from registry.errors import InputError, UsageError
from registry.runtime.precision import fp16_max_abs, precision_budget
from registry.store.document import Entry, Registry

if TYPE_CHECKING:
    from registry.plugin import Family

BOOTSTRAP = 2000


@dataclass(frozen=True)
class GateResult:
    """One gate verdict. Fields after ``passed`` are None where they do not apply (left out of the JSON record)."""

    entry: str
    mode: str | None
    samples: int
    sizes: list[str]
    seed: int
    budget: float
    plcc: float
    srocc: float
    drop: float
    drop_ci95: tuple[float, float]
    mean_abs_diff: float
    max_abs_diff: float
    passed: bool
    over: str | None = None  # pinned input sets: "samples" (one score each) or "elements" (image-like outputs)
    inputs: str | None = None  # the pinned input set the gate ran on (path in the registry folder)
    inputs_sha256: str | None = None
    precision: str | None = None  # "fp16" (int8 records predate the field and leave it out)
    max_abs_budget: float | None = None  # fp16: largest allowed |candidate - fp32|
    nonfinite: int | None = None  # candidate outputs that were NaN or infinite (the gate fails)
    model_sha256: str | None = None  # fp16: the fp32 model the candidate was judged against
    candidate_sha256: str | None = None  # fp16: the judged sibling
    arithmetic: str | None = None  # fp16: what the statistics above measure (device fp16 storage, emulated)
    cpu_run: dict[str, Any] | None = None  # fp16: the file as onnxruntime's CPU provider runs it (must pass too)

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["drop_ci95"] = [_num(x) for x in self.drop_ci95]
        for k in ("plcc", "srocc", "drop", "mean_abs_diff", "max_abs_diff"):
            d[k] = _num(d[k])
        return {k: v for k, v in d.items() if v is not None or k in _ALWAYS}


_ALWAYS = frozenset(f.name for f in fields(GateResult) if f.default is MISSING)


def _num(x: float) -> float | None:
    """Statistics that are not finite (a candidate that overflowed) are recorded as null: JSON has no NaN."""
    return float(x) if np.isfinite(x) else None


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 0 with ties averaged (as Spearman's rho needs; NaNs tie with each other), from one sort."""
    x = np.asarray(x)
    n = len(x)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    first = np.ones(n, bool)  # where a run of equal values starts in sorted order
    if n > 1:
        same = xs[1:] == xs[:-1]
        if xs.dtype.kind in "fc":
            same |= np.isnan(xs[1:]) & np.isnan(xs[:-1])
        first[1:] = ~same
    starts = np.flatnonzero(first)
    mean_rank = (starts + np.append(starts[1:], n) - 1) / 2.0  # the mean of the positions start..end of each run
    r = np.empty(n, np.float64)
    r[order] = mean_rank[np.cumsum(first) - 1]
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return pearson(ranks(a), ranks(b))


def bootstrap_drop_ci(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n_boot: int = BOOTSTRAP) -> tuple[float, float]:
    """Percentile 95% interval of 1 - PLCC over resampled pairs (vectorised)."""
    n = len(a)
    idx = rng.integers(0, n, size=(n_boot, n))
    xa, xb = a[idx], b[idx]
    xa = xa - xa.mean(axis=1, keepdims=True)
    xb = xb - xb.mean(axis=1, keepdims=True)
    den = np.sqrt((xa * xa).sum(axis=1) * (xb * xb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xa * xb).sum(axis=1) / den
    r = np.where(np.isfinite(r), r, -1.0)  # a degenerate resample counts as the worst case
    drops = 1.0 - r
    lo, hi = np.percentile(drops, [2.5, 97.5])
    return float(lo), float(hi)


def compare(s32: np.ndarray, s8: np.ndarray, budget: float, rng: np.random.Generator,
            max_abs: float | None = None) -> dict[str, Any]:
    """Statistics of candidate scores ``s8`` against fp32 scores ``s32``, and the verdict.

    Passes when the upper end of the bootstrap 95% interval of 1 - PLCC is within ``budget`` and
    (where given) every |candidate - fp32| is within ``max_abs``. Non-finite fp32 scores mean the
    inputs are unusable (refused); a non-finite candidate score (fp16 overflow) fails the gate.
    """
    if len(s32) < 8:
        raise UsageError("the gate needs at least 8 samples")
    if not np.all(np.isfinite(s32)):
        raise InputError("non-finite scores from the fp32 model")
    spread = float(np.std(s32))
    if spread <= 1e-7 * max(1.0, float(np.max(np.abs(s32)))):
        raise InputError("fp32 scores do not vary across the inputs: PLCC would measure noise (inputs not representative)")
    bad = int(np.count_nonzero(~np.isfinite(s8)))
    if bad:
        nan = float("nan")
        return {"plcc": nan, "srocc": nan, "drop": nan, "drop_ci95": (nan, nan), "mean_abs_diff": nan,
                "max_abs_diff": nan, "passed": False, "nonfinite": bad}
    plcc = pearson(s32, s8)
    lo, hi = bootstrap_drop_ci(s32, s8, rng)
    diff = np.abs(s32 - s8)
    passed = bool(hi <= budget) and (max_abs is None or float(diff.max()) <= max_abs)
    return {"plcc": plcc, "srocc": spearman(s32, s8), "drop": 1.0 - plcc, "drop_ci95": (lo, hi),
            "mean_abs_diff": float(diff.mean()), "max_abs_diff": float(diff.max()), "passed": passed}


def cluster_bootstrap_drop_ci(a: list[np.ndarray], b: list[np.ndarray], rng: np.random.Generator,
                              n_boot: int = BOOTSTRAP) -> tuple[float, float]:
    """95% interval of 1 - PLCC over all elements, resampling whole samples (from per-sample sums)."""
    ma = float(np.mean(np.concatenate([x.ravel() for x in a])))
    mb = float(np.mean(np.concatenate([x.ravel() for x in b])))
    stats = np.array([[x.size, (x - ma).sum(), (y - mb).sum(), ((x - ma) ** 2).sum(), ((y - mb) ** 2).sum(),
                       ((x - ma) * (y - mb)).sum()] for x, y in zip(a, b, strict=True)], np.float64)
    n = len(a)
    idx = rng.integers(0, n, size=(n_boot, n))
    counts = np.zeros((n_boot, n), np.float64)
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
    k, sa, sb, saa, sbb, sab = (counts @ stats).T
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (k * sab - sa * sb) / np.sqrt((k * saa - sa * sa) * (k * sbb - sb * sb))
    r = np.where(np.isfinite(r), r, -1.0)  # a degenerate resample counts as the worst case
    lo, hi = np.percentile(1.0 - r, [2.5, 97.5])
    return float(lo), float(hi)


def compare_outputs(o32: list[np.ndarray], oc: list[np.ndarray], budget: float, seed: int,
                    max_abs: float | None = None) -> tuple[str, dict[str, Any]]:
    """('samples' or 'elements', the statistics ``compare`` reports) for per-sample model outputs.

    Scalar outputs (a score) are compared over samples. Image-like outputs (a filter's frame) are
    compared over all output elements; the interval then resamples whole samples (the elements of
    one frame are not independent draws), from per-sample sums.
    """
    rng = np.random.default_rng(seed)
    if all(x.size == 1 for x in o32):
        return "samples", compare(np.array([float(x.reshape(-1)[0]) for x in o32]),
                                  np.array([float(x.reshape(-1)[0]) for x in oc]), budget, rng, max_abs)
    a = np.concatenate([x.ravel() for x in o32])
    b = np.concatenate([x.ravel() for x in oc])
    if not np.all(np.isfinite(a)):
        raise InputError("non-finite outputs from the fp32 model")
    if float(np.std(a)) <= 1e-7 * max(1.0, float(np.max(np.abs(a)))):
        raise InputError("fp32 outputs do not vary across the inputs: PLCC would measure noise (inputs not representative)")
    bad = int(np.count_nonzero(~np.isfinite(b)))
    if bad:
        nan = float("nan")
        return "elements", {"plcc": nan, "srocc": nan, "drop": nan, "drop_ci95": (nan, nan), "mean_abs_diff": nan,
                            "max_abs_diff": nan, "passed": False, "nonfinite": bad}
    lo, hi = cluster_bootstrap_drop_ci(o32, oc, rng)
    plcc = pearson(a, b)
    diff = np.abs(a - b)
    passed = bool(hi <= budget) and (max_abs is None or float(diff.max()) <= max_abs)
    return "elements", {"plcc": plcc, "srocc": spearman(a, b), "drop": 1.0 - plcc, "drop_ci95": (lo, hi),
                        "mean_abs_diff": float(diff.mean()), "max_abs_diff": float(diff.max()), "passed": passed}


def run_outputs(model: bytes, feeds: Sequence[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """The first output of ``model`` for each feed, one run per feed (as the runtime runs one frame at a time).

    The one place the gate makes a session: tinyreg's loader, default session options, the CPU provider,
    so the gate judges exactly the computation ``score`` runs.
    """
    from registry.runtime.loader import session_from_bytes

    sess = session_from_bytes(model, "gate model")
    return [np.asarray(sess.run(None, f)[0], np.float64) for f in feeds]


def scores(session: Any, feeds: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    return np.array([float(np.asarray(session.run(None, f)[0]).reshape(-1)[0]) for f in feeds], np.float64)


def entry_family(entry: Entry) -> Family:
    """The installed family an entry names, with its contract checked against the entry."""
    from registry.export.core import check_entry_contract
    from registry.families import get_family

    fam_name = entry.get("family")
    if not isinstance(fam_name, str):
        raise UsageError(f"entry '{entry['id']}' names no family, so no representative inputs are declared for it "
                         "(uniform noise is not a substitute)")
    fam = get_family(fam_name)
    check_entry_contract(entry, fam)
    return fam


def require_trusted(registry_path: Path, ids: Sequence[str], trust: Any, *, sibling: str | None = None) -> None:
    """Under a consumer policy (``trust``, else ``$TINYREG_TRUST``) every model a quant command runs must verify first:
    each entry's fp32 model, and with ``sibling`` ('int8', 'fp16') that sibling too, whatever its recorded gate says
    (a failed record is re-gated, not refused). Without a policy, nothing to check."""
    from registry.runtime.loader import verified_entry
    from registry.signing.policy import resolve_trust

    policy = resolve_trust(trust)
    if policy is None:
        return
    for eid in ids:
        verified_entry(eid, registry_path, trust=policy)
        if sibling is not None:
            verified_entry(eid, registry_path, precision=sibling, require_gate=False, trust=policy)


def representative_feeds(entry: Entry, n: int, sizes: Sequence[tuple[int, int]], seed: int) -> list[dict[str, np.ndarray]]:
    """The family's representative samples, turned into model inputs by the family's ``feeds``."""
    fam = entry_family(entry)
    return [fam.feeds(sample) for k, size in enumerate(sizes) for sample in fam.samples(n, size, seed * 1000 + k)]


# ---------------------------------------------------------------- sample sources


class SampleSource(Protocol):
    """Where the gate's inputs come from: model feeds (one sample each) and how the result names them."""

    def feeds(self, entry: Entry, seed: int) -> list[dict[str, np.ndarray]]: ...

    def describe(self) -> dict[str, Any]:
        """GateResult fields that name the source (``sizes``, and for a pinned set ``inputs``, ``inputs_sha256``)."""
        ...


@dataclass(frozen=True)
class FamilySamples:
    """The family's representative samples: ``pairs`` per size, seeded by the gate's seed."""

    pairs: int
    sizes: tuple[tuple[int, int], ...]

    def feeds(self, entry: Entry, seed: int) -> list[dict[str, np.ndarray]]:
        return representative_feeds(entry, self.pairs, self.sizes, seed)

    def describe(self) -> dict[str, Any]:
        return {"sizes": [f"{h}x{w}" for h, w in self.sizes]}


@dataclass(frozen=True)
class PinnedInputs:
    """A pinned (or given, to be pinned) input set: one array per model input, samples along the first axis.

    The set is fixed: the seed only drives the bootstrap.
    """

    arrays: Mapping[str, np.ndarray]
    rel: str  # where it is (or will be) pinned in the registry folder
    sha256: str

    def feeds(self, entry: Entry, seed: int) -> list[dict[str, np.ndarray]]:
        n = len(next(iter(self.arrays.values())))
        return [{k: v[i : i + 1] for k, v in self.arrays.items()} for i in range(n)]

    def describe(self) -> dict[str, Any]:
        shape = "x".join(str(d) for d in next(iter(self.arrays.values())).shape[1:])
        return {"sizes": [shape], "inputs": self.rel, "inputs_sha256": self.sha256}


def family_source(entry: Entry, pairs: int | None = None, sizes: Sequence[tuple[int, int]] | None = None,
                  precision: str = "int8") -> FamilySamples:
    """The family's samples with its gate defaults (the int8 policy's, or the fp16 policy's for ``precision='fp16'``)."""
    fam = entry_family(entry)
    pol: Any = fam.fp16 if precision == "fp16" else fam.quant
    return FamilySamples(int(pairs or pol.gate_pairs), tuple(sizes or pol.gate_sizes))


# ---------------------------------------------------------------- the gate


@dataclass
class Gate:
    """Inputs and fp32 outputs of one entry, computed once, against which candidates (int8 or fp16) are judged."""

    entry: Entry
    budget: float
    seed: int
    source: SampleSource
    feeds: list[dict[str, np.ndarray]]
    fp32_outputs: list[np.ndarray]
    max_abs: float | None = None
    precision: str = "int8"
    fp32_sha256: str | None = None

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return list(getattr(self.source, "sizes", ()))

    @property
    def fp32_scores(self) -> np.ndarray:
        return np.array([float(x.reshape(-1)[0]) for x in self.fp32_outputs], np.float64)

    @classmethod
    def prepare(
        cls,
        reg: Registry,
        entry: Entry,
        *,
        seed: int = 0,
        pairs: int | None = None,
        sizes: Sequence[tuple[int, int]] | None = None,
        fp32_bytes: bytes | None = None,
        budget: float | None = None,
        source: SampleSource | None = None,
        precision: str = "int8",
        max_abs: float | None = None,
    ) -> Gate:
        """``source``: where the inputs come from (default: the family's samples, ``pairs`` per size of ``sizes``).

        ``precision`` 'int8' gates on the entry's ``quant_accuracy_budget_plcc``; 'fp16' on the entry's
        ``fp16_accuracy_budget_plcc`` (default: the family's fp16 policy) and a max |score error| (default 1e-3).
        """
        from registry._internal.hashing import sha256_bytes
        from registry.runtime.loader import verified_model_bytes

        if precision not in ("int8", "fp16"):
            raise UsageError(f"unknown precision {precision!r} to gate (int8, fp16)")
        if budget is None:
            budget = precision_budget(entry, precision)
        if precision == "fp16" and max_abs is None:
            max_abs = fp16_max_abs(entry)
        src = source if source is not None else family_source(entry, pairs, sizes, precision)
        feeds = src.feeds(entry, seed)
        fp32 = fp32_bytes if fp32_bytes is not None else verified_model_bytes(reg, entry)
        return cls(entry, float(budget), seed, src, feeds, run_outputs(fp32, feeds), max_abs, precision,
                   sha256_bytes(fp32).sha256)

    def judge(self, candidate: bytes, mode: str | None = None) -> GateResult:
        """The verdict on ``candidate``. An fp16 candidate is run twice: as a device with fp16 kernels computes it
        (``registry.quant.fp16.emulate``: fp16 storage, fp32 accumulation; the recorded statistics) and as this
        CPU runs the file; both must pass."""
        from registry._internal.hashing import sha256_bytes

        judged = candidate
        if self.precision == "fp16":
            from registry.quant.fp16 import emulate

            judged = emulate(candidate)
        over, stats = compare_outputs(self.fp32_outputs, run_outputs(judged, self.feeds), self.budget, self.seed,
                                      self.max_abs)
        desc = self.source.describe()
        extra: dict[str, Any] = {}
        if "inputs" in desc:
            extra["over"] = over
        if self.precision == "fp16":
            _, direct = compare_outputs(self.fp32_outputs, run_outputs(candidate, self.feeds), self.budget, self.seed,
                                        self.max_abs)
            extra.update(precision="fp16", max_abs_budget=self.max_abs, model_sha256=self.fp32_sha256,
                         candidate_sha256=sha256_bytes(candidate).sha256,
                         arithmetic="fp16 storage of every fp16 tensor, fp32 accumulation (emulated on the CPU)",
                         cpu_run={"max_abs_diff": _num(direct["max_abs_diff"]), "drop_ci95": [_num(x) for x in direct["drop_ci95"]],
                                  "nonfinite": direct.get("nonfinite", 0), "passed": direct["passed"]})
            stats = dict(stats, passed=bool(stats["passed"] and direct["passed"]))
        default_mode = "fp16" if self.precision == "fp16" else self.entry.get("quant_mode")
        return GateResult(entry=str(self.entry["id"]), mode=mode or default_mode, samples=len(self.feeds), seed=self.seed,
                          budget=self.budget, **desc, **extra, **stats)




def run_gate(
    reg: Registry,
    entry: Entry,
    *,
    seed: int = 0,
    pairs: int | None = None,
    sizes: Sequence[tuple[int, int]] | None = None,
    int8_bytes: bytes | None = None,
    mode: str | None = None,
    source: SampleSource | None = None,
    precision: str = "int8",
) -> GateResult:
    """Gate an entry's pinned sibling of ``precision`` (or candidate ``int8_bytes``) against its fp32 model."""
    from registry.runtime.loader import verified_model_bytes

    gate = Gate.prepare(reg, entry, seed=seed, pairs=pairs, sizes=sizes, source=source, precision=precision)
    cand = int8_bytes if int8_bytes is not None else verified_model_bytes(reg, entry, precision=precision)
    return gate.judge(cand, mode)
