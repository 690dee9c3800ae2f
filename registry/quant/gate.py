"""The int8-versus-fp32 gate: drop = 1 - PLCC(fp32 scores, int8 scores) on representative inputs.

A verdict must not depend on luck. The gate feeds every input (``ref`` and
``dist``) with the inputs the family declares representative (for full-reference
image metrics: natural images under real distortions, spanning the score
range), enough of them, and passes only when the upper end of a bootstrap 95%
interval of the drop is within the entry's ``quant_accuracy_budget_plcc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from registry.errors import InputError, UsageError
from registry.store.document import Entry, Registry

if TYPE_CHECKING:
    from registry.plugin import Family

BOOTSTRAP = 2000


@dataclass(frozen=True)
class GateResult:
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

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["drop_ci95"] = list(self.drop_ci95)
        return d


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as Spearman's rho needs)."""
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x), np.float64)
    r[order] = np.arange(len(x), dtype=np.float64)
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=r)
    return np.asarray(sums[inv] / counts[inv], np.float64)


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


def compare(s32: np.ndarray, s8: np.ndarray, budget: float, rng: np.random.Generator) -> dict[str, Any]:
    if len(s32) < 8:
        raise UsageError("the gate needs at least 8 samples")
    if not (np.all(np.isfinite(s32)) and np.all(np.isfinite(s8))):
        raise InputError("non-finite scores from the fp32 or int8 model")
    spread = float(np.std(s32))
    if spread <= 1e-7 * max(1.0, float(np.max(np.abs(s32)))):
        raise InputError("fp32 scores do not vary across the inputs: PLCC would measure noise (inputs not representative)")
    plcc = pearson(s32, s8)
    lo, hi = bootstrap_drop_ci(s32, s8, rng)
    diff = np.abs(s32 - s8)
    return {"plcc": plcc, "srocc": spearman(s32, s8), "drop": 1.0 - plcc, "drop_ci95": (lo, hi),
            "mean_abs_diff": float(diff.mean()), "max_abs_diff": float(diff.max()), "passed": bool(hi <= budget)}


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


def representative_feeds(entry: Entry, n: int, sizes: Sequence[tuple[int, int]], seed: int) -> list[dict[str, np.ndarray]]:
    """The family's representative samples, turned into model inputs by the family's ``feeds``."""
    fam = entry_family(entry)
    return [fam.feeds(sample) for k, size in enumerate(sizes) for sample in fam.samples(n, size, seed * 1000 + k)]


@dataclass
class Gate:
    """Representative inputs and fp32 scores of one entry, computed once, against which int8 candidates are judged."""

    entry: Entry
    budget: float
    seed: int
    sizes: list[tuple[int, int]]
    feeds: list[dict[str, np.ndarray]]
    fp32_scores: np.ndarray

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
    ) -> Gate:
        from registry.runtime.loader import verified_model_bytes

        if budget is None:
            recorded = entry.get("quant_accuracy_budget_plcc")
            if not isinstance(recorded, (int, float)):
                raise UsageError(f"entry '{entry['id']}' has no quant_accuracy_budget_plcc")
            budget = float(recorded)
        pol = entry_family(entry).quant
        n = pairs or pol.gate_pairs
        sz = list(sizes or pol.gate_sizes)
        feeds = representative_feeds(entry, n, sz, seed)
        fp32 = fp32_bytes if fp32_bytes is not None else verified_model_bytes(reg, entry)
        return cls(entry, float(budget), seed, sz, feeds, scores(_session(fp32), feeds))

    def judge(self, int8_bytes: bytes, mode: str | None = None) -> GateResult:
        stats = compare(self.fp32_scores, scores(_session(int8_bytes), self.feeds), self.budget, np.random.default_rng(self.seed))
        return GateResult(entry=str(self.entry["id"]), mode=mode or self.entry.get("quant_mode"), samples=len(self.feeds),
                          sizes=[f"{h}x{w}" for h, w in self.sizes], seed=self.seed, budget=self.budget, **stats)


def _session(model: bytes) -> Any:
    from registry.runtime.loader import session_from_bytes

    return session_from_bytes(model, "gate model")


def run_gate(
    reg: Registry,
    entry: Entry,
    *,
    seed: int = 0,
    pairs: int | None = None,
    sizes: Sequence[tuple[int, int]] | None = None,
    int8_bytes: bytes | None = None,
    mode: str | None = None,
) -> GateResult:
    """Gate an entry's pinned int8 sibling (or candidate ``int8_bytes``) against its fp32 model."""
    from registry.runtime.loader import verified_model_bytes

    gate = Gate.prepare(reg, entry, seed=seed, pairs=pairs, sizes=sizes)
    return gate.judge(int8_bytes if int8_bytes is not None else verified_model_bytes(reg, entry, int8=True), mode)
