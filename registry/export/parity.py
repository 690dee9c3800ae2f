"""Parity of a registry entry's ONNX graph with its family's reference implementation."""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from registry.errors import UsageError
from registry.store.document import Entry
from registry.store.types import is_smoke

if TYPE_CHECKING:
    from registry.export.core import WeightSource
    from registry.plugin import Family, Reference



@dataclass(frozen=True)
class ParityResult:
    entry: str
    reference: str
    pairs: int
    sizes: list[str]
    tolerance: float
    identical_tolerance: float
    max_abs_diff: float
    mean_abs_diff: float
    identical_max_abs: float
    reference_identical_max_abs: float
    worst_pair: str
    passed: bool
    onnxruntime: str
    machine: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_size(text: str) -> tuple[int, int]:
    try:
        if "x" in text:
            h, w = text.lower().split("x", 1)
            return int(h), int(w)
        return int(text), int(text)
    except ValueError as exc:
        raise UsageError(f"size {text!r}: expected N or HxW") from exc


def parity_reference(
    entry: Entry, fam: Family, given: Sequence[WeightSource] = (), *, cache_dir: Path | None = None
) -> Reference:
    """The family's reference implementation on the very weights the entry was built from."""
    from registry.export.core import entry_weights

    if fam.parity is None:
        raise UsageError(f"family '{fam.name}' declares no reference implementation to check parity against")
    if is_smoke(entry):
        raise UsageError(f"'{entry['id']}' is a smoke placeholder; export real weights first")
    weights = entry_weights(entry, fam, given, cache_dir=cache_dir)
    return fam.reference(weights if fam.weights else None)


def run_parity(
    session: Any,
    entry: Entry,
    fam: Family,
    reference: Reference,
    *,
    pairs: int | None = None,
    sizes: Sequence[tuple[int, int]] | None = None,
    seed: int = 0,
    tolerance: float | None = None,
    identical_tolerance: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ParityResult:
    """Score the family's representative samples with both; compare absolutely; identical inputs must give the identical score."""
    import onnxruntime as ort

    from registry.export.core import check_entry_contract
    from registry.plugin import Parity, Sample

    check_entry_contract(entry, fam)
    spec = fam.parity or Parity()
    tol = spec.tolerance if tolerance is None else tolerance
    id_tol = spec.identical_tolerance if identical_tolerance is None else identical_tolerance
    n = spec.pairs if pairs is None else pairs
    sz = list(spec.sizes if sizes is None else sizes)
    want = fam.meta.identical_score
    diffs: list[tuple[float, str]] = []
    identical = 0.0
    ref_identical = 0.0
    total = n * len(sz)
    done = 0
    for k, size in enumerate(sz):
        for sample in fam.samples(n, size, seed * 1000 + k):
            onnx_score = float(session.run(None, fam.feeds(sample))[0])
            ref_score = reference.score(sample)
            diffs.append((abs(onnx_score - ref_score), sample.name))
            same = Sample(f"{sample.name} (identical)", {r: sample.images["ref"] for r in sample.images},
                          None if sample.luma is None else {r: sample.luma["ref"] for r in sample.luma})
            identical = max(identical, abs(float(session.run(None, fam.feeds(same))[0]) - want))
            ref_identical = max(ref_identical, abs(reference.score(same) - want))
            done += 1
            if progress:
                progress(done, total)
    if not diffs:
        raise UsageError("parity needs at least one sample")
    worst = max(diffs)
    max_abs = worst[0]
    return ParityResult(
        entry=str(entry["id"]),
        reference=reference.name,
        pairs=len(diffs),
        sizes=[f"{h}x{w}" for h, w in sz],
        tolerance=tol,
        identical_tolerance=id_tol,
        max_abs_diff=max_abs,
        mean_abs_diff=float(np.mean([d for d, _ in diffs])),
        identical_max_abs=identical,
        reference_identical_max_abs=ref_identical,
        worst_pair=worst[1],
        passed=max_abs <= tol and identical <= id_tol,
        onnxruntime=ort.__version__,
        machine=platform.machine(),
    )


def record_parity(registry_path: Path, result: ParityResult, *, model_sha256: str | None = None,
                  row: Mapping[str, Any] | None = None) -> None:
    """Record ``result`` in its entry; ``row`` (the entry parity ran on, as verified with the model bytes) or at
    least ``model_sha256`` (the fp32 model parity ran on) refuses a changed entry."""
    from registry.store.document import expect_row
    from registry.store.entries import update_entry

    rec = result.as_json()
    rec.pop("entry")
    expect = expect_row(row) if row is not None else ({result.entry: model_sha256} if model_sha256 else None)
    update_entry(registry_path, result.entry, {"parity": rec}, expect=expect)
