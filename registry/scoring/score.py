"""Score images and videos (Y4M or any container PyAV decodes) with a pinned full-reference model through ``registry.load``.

Any family: the entry names its family, and the family's ``feeds`` turns the images into model input.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from registry.errors import CheckFailed, InputError, UsageError
from registry.media.images import image_size, read_image
from registry.media.limits import DEFAULT_MAX_PIXELS
from registry.store.document import find_registry, read_registry
from registry.store.types import is_smoke

if TYPE_CHECKING:
    from registry.media.video import Scale, Selection
    from registry.runtime.loader import Providers, Trust  # the loader imports onnxruntime lazily; types only


@dataclass
class ScoreResult:
    entry: str
    family: str
    smoke: bool
    direction: str = ""
    scores: list[float] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)  # frame numbers of ``scores`` (videos); empty for an image pair
    int8: bool = False
    precision: str = "fp32"
    graph_sha256: str = ""  # the graph that ran (the fp32 model or the sibling)

    def frame_numbers(self) -> list[int]:
        return self.indices if len(self.indices) == len(self.scores) else list(range(len(self.scores)))

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"entry": self.entry, "family": self.family, "smoke": self.smoke, "direction": self.direction}
        if self.int8:
            out["int8"] = True
        if self.precision != "fp32":  # a reduced-precision score says so, with the graph it came from
            out["precision"] = self.precision
            out["graph_sha256"] = self.graph_sha256
        if len(self.scores) == 1 and not self.indices:
            out["score"] = self.scores[0]
        else:
            out["frames"] = [{"frame": i, "score": s} for i, s in zip(self.frame_numbers(), self.scores, strict=True)]
            out["mean"] = float(np.mean(self.scores)) if self.scores else None
        return out

    def csv(self) -> str:
        return "frame,score\n" + "".join(f"{i},{s:.9g}\n" for i, s in zip(self.frame_numbers(), self.scores, strict=True))


def provider_session_options(provider: str, threads: int = 0) -> Any:
    """tinyreg's session options; on a GPU provider the CPU fallback is off (a node that cannot run there fails loudly)."""
    from registry.runtime.loader import default_session_options

    so = default_session_options(threads)
    if threads:
        so.inter_op_num_threads = 1
    if provider in ("cuda", "tensorrt"):
        so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    return so


class Scorer:
    """A loaded model plus its family, which turns inputs into model feeds (the family is read from the entry)."""

    def __init__(self, registry: Path | None, entry_id: str, *, int8: bool = False, providers: Providers | None = None,
                 session_options: Any = None, max_memory: int | None = None, precision: str | None = None,
                 provider: str | None = None, trust: Trust = None) -> None:
        """``precision``: fp32 (default), fp16 or int8 (``int8=True`` is the older spelling); a sibling must have
        passed its recorded gate. ``provider``: cpu, cuda or tensorrt (providers, session options and IOBinding
        chosen here); or ``providers``/``session_options`` given as they are. ``trust``: the consumer's policy."""
        from registry.export.core import check_entry_contract
        from registry.families import get_family
        from registry.runtime.binding import runner_for
        from registry.runtime.loader import SmokeModelWarning, load_entry
        from registry.runtime.precision import check_gate, parse_precision, select_graph

        path = find_registry(registry)
        entry = read_registry(path).get(entry_id)
        self.precision = parse_precision(precision, int8=int8)
        fam_name = entry.get("family")
        if not isinstance(fam_name, str):
            raise UsageError(f"entry '{entry_id}' names no family, so tinyreg does not know how to feed it")
        self.fam = get_family(fam_name)
        self.memory_model = self.fam.score_memory
        self.max_memory = max_memory
        self._sizes_checked: set[tuple[int, int]] = set()
        if entry.get("kind") != "fr":
            raise UsageError(f"entry '{entry_id}' is not a full-reference model")
        graph = select_graph(entry, self.precision)  # refuses a missing or ungated sibling before anything loads
        self.int8 = self.precision == "int8"
        self.provider = provider or "cpu"
        if provider is not None and providers is None:
            from registry.runtime.providers import plan

            providers = plan(provider, model_sha256=graph.sha256, registry_root=path.parent).providers
            session_options = session_options or provider_session_options(provider)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmokeModelWarning)  # reported by the caller, once
            # the contract and the smoke warning come from the row verified with the bytes (and signature, with a trust policy)
            self.session, self.entry = load_entry(str(entry["id"]), path, precision=self.precision, providers=providers,
                                                  session_options=session_options, trust=trust)
        if self.precision != "fp32":
            check_gate(self.entry, self.precision)  # on the row read with the bytes
        self.graph = select_graph(self.entry, self.precision, require_gate=False)
        if self.graph.sha256 != graph.sha256 and self.provider == "tensorrt":
            raise UsageError(f"entry '{entry_id}' changed while it was being loaded; run again")
        if self.provider in ("cuda", "tensorrt"):
            from registry.runtime.providers import PROVIDERS

            if self.session.get_providers()[0] != PROVIDERS[self.provider]:
                raise UsageError(f"provider '{self.provider}': onnxruntime could not start {PROVIDERS[self.provider]} "
                                 "here (no usable GPU?)")
        self.run = runner_for(self.session, self.provider)
        check_entry_contract(self.entry, self.fam)
        self.family = fam_name

    @property
    def smoke(self) -> bool:
        return is_smoke(self.entry)

    def result(self) -> ScoreResult:
        return ScoreResult(str(self.entry["id"]), self.family, self.smoke, self.fam.meta.direction.value, int8=self.int8,
                           precision=self.precision, graph_sha256=self.graph.sha256)

    def check_size(self, h: int, w: int, what: str = "images") -> None:
        """Refuse a size that is too small, or whose memory estimate is over the limit (once per size:
        after the first run the session's own memory is no longer 'available')."""
        from registry.scoring.memory import check_memory

        least = self.fam.contract.min_size
        if min(h, w) < least:
            raise InputError(f"{what} are too small ({w}x{h}; need at least {least}x{least})")
        if self.memory_model is not None and (h, w) not in self._sizes_checked:
            check_memory(self.memory_model.estimate(h, w), f"scoring {what} of {w}x{h} with '{self.entry['id']}'", self.max_memory)
            self._sizes_checked.add((h, w))

    def score(self, ref: np.ndarray, dist: np.ndarray, what: str = "images", luma: tuple[np.ndarray, np.ndarray] | None = None) -> float:
        """Score RGB images (HxWx3, [0, 1]); ``luma`` carries their Y planes when the source has them (Y4M)."""
        from registry.plugin import Sample

        if ref.shape != dist.shape:
            raise InputError(f"{what} differ in size: {ref.shape[1]}x{ref.shape[0]} vs {dist.shape[1]}x{dist.shape[0]}")
        self.check_size(ref.shape[0], ref.shape[1], "frames" if what.startswith("frame") else what)
        sample = Sample(what, {"ref": ref, "dist": dist}, None if luma is None else {"ref": luma[0], "dist": luma[1]})
        return self.run(self.fam.feeds(sample))


def _reg(registry: str | os.PathLike[str] | None) -> Path | None:
    return None if registry is None else Path(registry)


def _entry_first(entry_id: object, fn: str) -> str:
    """The entry id comes first everywhere (``registry=`` is a keyword): a path in its place is the old order."""
    if not isinstance(entry_id, str):
        raise TypeError(f"{fn}() takes the entry id first and the registry as a keyword: {fn}(ENTRY_ID, ..., registry=PATH)")
    return entry_id


def score_images(
    entry_id: str, ref: str | os.PathLike[str], dist: str | os.PathLike[str], *,
    registry: str | os.PathLike[str] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS, max_memory: int | None = None, int8: bool = False, trust: Trust = None,
    precision: str = "fp32", provider: str = "cpu",
) -> ScoreResult:
    """Score one image pair with entry ``entry_id`` (``int8``: with the entry's gated int8 sibling; ``trust``: the
    consumer's policy, as ``registry.load``).

    ``registry``: a ``registry.json`` or its folder (None: found as every command finds it).
    Both headers are read first: a pair over ``max_pixels`` (None: no cap), of different sizes,
    or whose memory estimate exceeds ``max_memory`` (default: the memory available now) is
    refused before any pixel is decoded. ``precision`` (fp32, fp16, int8) picks the graph (a sibling must
    have passed its gate); ``provider`` cpu, cuda or tensorrt.
    """
    s = Scorer(_reg(registry), _entry_first(entry_id, "score_images"), max_memory=max_memory, int8=int8,
               precision=precision, provider=provider, trust=trust)
    ref, dist = Path(ref), Path(dist)
    res = s.result()
    (hr, wr), (hd, wd) = image_size(ref, max_pixels=max_pixels), image_size(dist, max_pixels=max_pixels)
    if (hr, wr) != (hd, wd):
        raise InputError(f"images differ in size: {ref} is {wr}x{hr}, {dist} is {wd}x{hd}")
    s.check_size(hr, wr)
    res.scores.append(s.score(read_image(ref, max_pixels=max_pixels), read_image(dist, max_pixels=max_pixels)))
    return _finite(res)


def score_videos(
    entry_id: str,
    ref: str | os.PathLike[str],
    dist: str | os.PathLike[str],
    *,
    registry: str | os.PathLike[str] | None = None,
    matrix: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_memory: int | None = None,
    int8: bool = False,
    selection: Selection | None = None,
    scale: Scale | None = None,
    precision: str = "fp32",
    provider: str = "cpu",
    decode_ahead: int | None = None,
    trust: Trust = None,
) -> ScoreResult:
    """Score two videos frame by frame with entry ``entry_id`` (``registry`` as in ``score_images``; ``selection``:
    which frames, ``scale``: how sizes are reconciled, ``int8``: with the gated int8 sibling, ``trust``: the
    consumer's policy, as ``registry.load``); ``ScoreResult.indices`` are the frame numbers scored.

    Both are opened first (a Y4M file is indexed whole): a truncated or malformed frame in either,
    a file without frames, frames over ``max_pixels``, different sizes or frame counts, or a memory
    estimate over ``max_memory`` is refused (one line naming the file) before any frame is scored.
    Two Y4M files also hand the family their Y planes (a luma family scores the Y plane itself).
    ``precision`` and ``provider`` as for :func:`score_images`. ``decode_ahead``: frames decoded ahead
    of the model by a decoder thread (default: 2 on a GPU provider, 0 on the CPU, whose cores the model uses).
    """
    from registry.media.video import Scale, Selection, aligned_frames, open_video
    from registry.scoring.prefetch import DEFAULT_DEPTH, prefetch

    sel = selection or Selection()
    scl = scale or Scale()
    s = Scorer(_reg(registry), _entry_first(entry_id, "score_videos"), max_memory=max_memory, int8=int8,
               precision=precision, provider=provider, trust=trust)
    ref, dist = Path(ref), Path(dist)
    ahead = decode_ahead if decode_ahead is not None else (DEFAULT_DEPTH if provider in ("cuda", "tensorrt") else 0)
    res = s.result()
    plain = sel == Selection() and scl == Scale()
    if plain and ref.suffix.lower() == ".y4m" and dist.suffix.lower() == ".y4m":
        from registry.media.y4m import Y4MReader

        with Y4MReader(ref, matrix, max_pixels=max_pixels) as ya, Y4MReader(dist, matrix, max_pixels=max_pixels) as yb:
            ha, hb = ya.header, yb.header
            for path, reader in ((ref, ya), (dist, yb)):  # the checks aligned_frames makes, in its order and words
                if reader.frame_count == 0:
                    raise InputError(f"{path}: no frames")
            if (ha.width, ha.height) != (hb.width, hb.height):
                raise InputError(f"{ref} is {ha.width}x{ha.height} but {dist} is {hb.width}x{hb.height}", hint="scale")
            if ya.frame_count != yb.frame_count:
                raise InputError(f"{ref} has {ya.frame_count} frames but {dist} has {yb.frame_count}")
            s.check_size(ha.height, ha.width, "frames")
            frames = prefetch(zip(ya.frames_with_luma(), yb.frames_with_luma(), strict=True), ahead)
            for i, ((fa, la), (fb, lb)) in enumerate(frames):
                res.scores.append(s.score(fa, fb, f"frame {i}", luma=(la, lb)))
                res.indices.append(i)
                if progress:
                    progress(i + 1, ya.frame_count)
        return _finite(res)
    with open_video(ref, matrix, max_pixels=max_pixels) as a, open_video(dist, matrix, max_pixels=max_pixels) as b:
        target = scl.target(a.info, b.info)
        if target is not None:
            s.check_size(target[1], target[0], "frames")
        elif (a.info.width, a.info.height) == (b.info.width, b.info.height):
            s.check_size(a.info.height, a.info.width, "frames")
        if target is None:  # frames are scored at their decoded size: a size change mid-stream is checked before conversion
            a.frame_check = b.frame_check = lambda h, w: s.check_size(h, w, "frames")
        total = sel.expected(a.info.frames) or 0
        for i, fa, fb in prefetch(aligned_frames(a, b, sel, scl), ahead):
            res.scores.append(s.score(fa, fb, f"frame {i}"))
            res.indices.append(i)
            if progress:
                progress(len(res.scores), max(total, len(res.scores)))
    if not res.scores:
        raise InputError(f"{ref}: no frames selected")
    return _finite(res)


def _finite(res: ScoreResult) -> ScoreResult:
    """``res``, or CheckFailed (exit 1) for a NaN or infinite score: never printed as a number (or as JSON's
    invalid ``NaN``). A dataset records the same as the pair's error (``scoring/results.py``)."""
    import math

    for i, v in zip(res.frame_numbers(), res.scores, strict=True):
        if not math.isfinite(v):
            what = f"frame {i}" if res.indices else "the image pair"
            raise CheckFailed(f"'{res.entry}' ({res.precision}) gave a non-finite score ({v}) for {what}"
                              + ("; the fp32 model may not overflow" if res.precision != "fp32" else ""))
    return res
