"""Score images and videos (Y4M or any container PyAV decodes) with a pinned full-reference model through ``registry.load``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import InputError, UsageError
from registry.media.images import image_size, imagenet_nchw, read_image
from registry.media.limits import DEFAULT_MAX_PIXELS
from registry.store.document import Entry, find_registry, read_registry


@dataclass
class ScoreResult:
    entry: str
    family: str
    smoke: bool
    scores: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"entry": self.entry, "family": self.family, "smoke": self.smoke}
        if len(self.scores) == 1:
            out["score"] = self.scores[0]
        else:
            out["frames"] = [{"frame": i, "score": s} for i, s in enumerate(self.scores)]
            out["mean"] = float(np.mean(self.scores)) if self.scores else None
        return out

    def csv(self) -> str:
        return "frame,score\n" + "".join(f"{i},{s:.9g}\n" for i, s in enumerate(self.scores))


class Scorer:
    """A loaded full-reference model plus the preprocessing its entry declares."""

    def __init__(self, registry: Path | None, family: str, entry_id: str | None = None, *, int8: bool = False,
                 providers: list[str] | None = None, session_options: Any = None, max_memory: int | None = None) -> None:
        from registry.families import get_family
        from registry.runtime.loader import SmokeModelWarning, load_entry

        fam = get_family(family)
        self.memory_model = fam.score_memory
        self.max_memory = max_memory
        self._sizes_checked: set[tuple[int, int]] = set()
        path = find_registry(registry)
        self.entry: Entry = read_registry(path).get(entry_id or fam.default_id)
        if self.entry.get("family") not in (None, family):
            raise UsageError(f"entry '{self.entry['id']}' is a {self.entry.get('family')} model, not {family}")
        if self.entry.get("kind") != "fr":
            raise UsageError(f"entry '{self.entry['id']}' is not a full-reference model")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmokeModelWarning)  # reported by the caller, once
            # preprocessing and the smoke warning come from the row verified with the bytes (and signature, with a trust policy)
            self.session, self.entry = load_entry(str(self.entry["id"]), path, int8=int8, providers=providers,
                                                  session_options=session_options)
        self.family = family
        conv = self.entry.get("input_conventions") or {}
        norm = conv.get("normalisation")
        if norm == "imagenet":
            mean, std = conv["mean"], conv["std"]
            self.prep: Callable[[np.ndarray], np.ndarray] = lambda x: imagenet_nchw(x, mean, std)
        elif norm == "none":
            self.prep = lambda x: np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
        else:
            raise UsageError(f"entry '{self.entry['id']}': unsupported input normalisation {norm!r}")
        if conv.get("resize", "none") != "none":
            raise UsageError(f"entry '{self.entry['id']}': resize policy {conv.get('resize')!r} is not supported")
        names = [i.name for i in self.session.get_inputs()]
        if names[:2] != ["ref", "dist"]:
            raise UsageError(f"entry '{self.entry['id']}' inputs are {names}, not ref/dist")

    @property
    def smoke(self) -> bool:
        return self.entry.get("smoke") is True

    def result(self) -> ScoreResult:
        return ScoreResult(str(self.entry["id"]), self.family, self.smoke)

    def check_size(self, h: int, w: int, what: str = "images") -> None:
        """Refuse a size that is too small, or whose memory estimate is over the limit (once per size:
        after the first run the session's own memory is no longer 'available')."""
        from registry.scoring.memory import check_memory

        if min(h, w) < 16:
            raise InputError(f"{what} are too small ({w}x{h}; need at least 16x16)")
        if self.memory_model is not None and (h, w) not in self._sizes_checked:
            check_memory(self.memory_model.estimate(h, w), f"scoring {what} of {w}x{h} with '{self.entry['id']}'", self.max_memory)
            self._sizes_checked.add((h, w))

    def score(self, ref: np.ndarray, dist: np.ndarray, what: str = "images") -> float:
        if ref.shape != dist.shape:
            raise InputError(f"{what} differ in size: {ref.shape[1]}x{ref.shape[0]} vs {dist.shape[1]}x{dist.shape[0]}")
        self.check_size(ref.shape[0], ref.shape[1], "frames" if what.startswith("frame") else what)
        return float(self.session.run(None, {"ref": self.prep(ref), "dist": self.prep(dist)})[0])


def score_images(
    registry: Path | None, family: str, ref: Path, dist: Path, entry_id: str | None = None, *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS, max_memory: int | None = None,
) -> ScoreResult:
    """Score one image pair.

    Both headers are read first: a pair over ``max_pixels`` (None: no cap), of different sizes,
    or whose memory estimate exceeds ``max_memory`` (default: the memory available now) is
    refused before any pixel is decoded.
    """
    s = Scorer(registry, family, entry_id, max_memory=max_memory)
    res = s.result()
    (hr, wr), (hd, wd) = image_size(ref, max_pixels=max_pixels), image_size(dist, max_pixels=max_pixels)
    if (hr, wr) != (hd, wd):
        raise InputError(f"images differ in size: {ref} is {wr}x{hr}, {dist} is {wd}x{hd}")
    s.check_size(hr, wr)
    res.scores.append(s.score(read_image(ref, max_pixels=max_pixels), read_image(dist, max_pixels=max_pixels)))
    return res


def score_videos(
    registry: Path | None,
    family: str,
    ref: Path,
    dist: Path,
    entry_id: str | None = None,
    *,
    matrix: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_memory: int | None = None,
) -> ScoreResult:
    """Score two videos frame by frame.

    Both are opened first (a Y4M file is indexed whole): a truncated or malformed frame in either,
    a file without frames, frames over ``max_pixels``, different sizes or frame counts, or a memory
    estimate over ``max_memory`` is refused (one line naming the file) before any frame is scored.
    """
    from registry.media.video import Selection, aligned_frames, open_video

    s = Scorer(registry, family, entry_id, max_memory=max_memory)
    res = s.result()
    with open_video(ref, matrix, max_pixels=max_pixels) as a, open_video(dist, matrix, max_pixels=max_pixels) as b:
        if (a.info.width, a.info.height) == (b.info.width, b.info.height):
            s.check_size(a.info.height, a.info.width, "frames")
        total = a.info.frames or 0
        for i, fa, fb in aligned_frames(a, b, Selection()):
            res.scores.append(s.score(fa, fb, f"frame {i}"))
            if progress:
                progress(len(res.scores), max(total, len(res.scores)))
    return res
