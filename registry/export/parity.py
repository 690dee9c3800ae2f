"""Parity of a registry entry's ONNX graph with its family's reference implementation."""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import UsageError
from registry.media.images import fr_pairs, imagenet_nchw

ReferenceScorer = Callable[[np.ndarray, np.ndarray], float]


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


def reference_name(call: str, package: str) -> str:
    """``call (package version)`` for the parity record."""
    from importlib import metadata

    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        version = "?"
    return f"{call} ({package} {version})"


def upstream_sources(entry: dict[str, Any], given: Sequence[str | None], defaults: Sequence[Any],
                     options: Sequence[str]) -> list[tuple[str, str]]:
    """(source, sha256) of each upstream file an entry was exported from: given, recorded URL, or the default URL."""
    from registry.errors import UsageError

    if entry.get("smoke") is True:
        raise UsageError(f"'{entry['id']}' is a smoke placeholder; export real weights first (tinyreg export ...)")
    ups = (entry.get("provenance") or {}).get("upstream") or []
    if len(ups) != len(defaults):
        raise UsageError(f"'{entry['id']}' records {len(ups)} upstream files, expected {len(defaults)}")
    out = []
    for up, g, default, option in zip(ups, given, defaults, options, strict=True):
        if g:
            src = g
        elif up.get("url"):
            src = str(up["url"])
        elif up.get("sha256") == default.sha256:
            src = str(default.url)
        else:
            raise UsageError(f"'{entry['id']}' was exported from a local {default.filename}; give that file again ({option})",
                             hint=option)
        out.append((src, str(up["sha256"])))
    return out


def run_parity(
    session: Any,
    entry: dict[str, Any],
    reference: ReferenceScorer,
    reference_name: str,
    *,
    pairs: int = 20,
    sizes: Sequence[tuple[int, int]] = ((256, 256),),
    seed: int = 0,
    tolerance: float = 1e-5,
    identical_tolerance: float = 1e-6,
    progress: Callable[[int, int], None] | None = None,
) -> ParityResult:
    """Score ``pairs`` natural-image pairs per size with both; compare absolutely."""
    import onnxruntime as ort

    conv = entry["input_conventions"]
    diffs: list[tuple[float, str]] = []
    identical = 0.0
    ref_identical = 0.0
    total = pairs * len(sizes)
    done = 0
    for size in sizes:
        for pair in fr_pairs(pairs, size, seed):
            r = imagenet_nchw(pair.ref, conv["mean"], conv["std"])
            d = imagenet_nchw(pair.dist, conv["mean"], conv["std"])
            onnx_score = float(session.run(None, {"ref": r, "dist": d})[0])
            ref_score = reference(pair.ref, pair.dist)
            diffs.append((abs(onnx_score - ref_score), pair.name))
            same = float(session.run(None, {"ref": r, "dist": r})[0])
            identical = max(identical, abs(same))
            ref_identical = max(ref_identical, abs(reference(pair.ref, pair.ref)))
            done += 1
            if progress:
                progress(done, total)
    worst = max(diffs)
    max_abs = worst[0]
    return ParityResult(
        entry=str(entry["id"]),
        reference=reference_name,
        pairs=len(diffs),
        sizes=[f"{h}x{w}" for h, w in sizes],
        tolerance=tolerance,
        identical_tolerance=identical_tolerance,
        max_abs_diff=max_abs,
        mean_abs_diff=float(np.mean([d for d, _ in diffs])),
        identical_max_abs=identical,
        reference_identical_max_abs=ref_identical,
        worst_pair=worst[1],
        passed=max_abs <= tolerance and identical <= identical_tolerance,
        onnxruntime=ort.__version__,
        machine=platform.machine(),
    )


def record_parity(registry_path: Path, result: ParityResult, *, model_sha256: str | None = None) -> None:
    """Record ``result`` in its entry; ``model_sha256`` (the fp32 model parity ran on) refuses a changed entry."""
    from registry.store.entries import update_entry

    rec = result.as_json()
    rec.pop("entry")
    update_entry(registry_path, result.entry, {"parity": rec},
                 expect={result.entry: model_sha256} if model_sha256 else None)
