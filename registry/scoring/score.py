"""Score images and videos (Y4M or any container PyAV decodes) with a pinned full-reference model through ``registry.load``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import InputError, UsageError
from registry.media.images import imagenet_nchw, read_image
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
                 providers: list[str] | None = None, session_options: Any = None) -> None:
        from registry.families import get_family
        from registry.runtime.loader import SmokeModelWarning, load

        fam = get_family(family)
        path = find_registry(registry)
        self.entry: Entry = read_registry(path).get(entry_id or fam.default_id)
        if self.entry.get("family") not in (None, family):
            raise UsageError(f"entry '{self.entry['id']}' is a {self.entry.get('family')} model, not {family}")
        if self.entry.get("kind") != "fr":
            raise UsageError(f"entry '{self.entry['id']}' is not a full-reference model")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmokeModelWarning)  # reported by the caller, once
            self.session = load(str(self.entry["id"]), path, int8=int8, providers=providers, session_options=session_options)
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

    def score(self, ref: np.ndarray, dist: np.ndarray, what: str = "images") -> float:
        if ref.shape != dist.shape:
            raise InputError(f"{what} differ in size: {ref.shape[1]}x{ref.shape[0]} vs {dist.shape[1]}x{dist.shape[0]}")
        if min(ref.shape[:2]) < 16:
            raise InputError(f"{what} are too small ({ref.shape[1]}x{ref.shape[0]}; need at least 16x16)")
        return float(self.session.run(None, {"ref": self.prep(ref), "dist": self.prep(dist)})[0])


def score_images(registry: Path | None, family: str, ref: Path, dist: Path, entry_id: str | None = None) -> ScoreResult:
    s = Scorer(registry, family, entry_id)
    res = s.result()
    res.scores.append(s.score(read_image(ref), read_image(dist)))
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
) -> ScoreResult:
    from registry.media.video import Selection, aligned_frames, open_video

    s = Scorer(registry, family, entry_id)
    res = s.result()
    with open_video(ref, matrix) as a, open_video(dist, matrix) as b:
        total = a.info.frames or 0
        for i, fa, fb in aligned_frames(a, b, Selection()):
            res.scores.append(s.score(fa, fb, f"frame {i}"))
            if progress:
                progress(len(res.scores), max(total, len(res.scores)))
    return res
