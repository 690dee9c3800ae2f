"""Dataset manifests: CSV rows ``ref,dist[,pair]`` (paths relative to the manifest) and deterministic shards."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from registry.errors import InputError, UsageError

MAX_FIELD = 4096  # characters of one manifest field (a path or a pair name)


@dataclass(frozen=True)
class PairSpec:
    """One row of a manifest: its position, its name and the two files (resolved)."""

    index: int
    pair: str
    ref: Path
    dist: Path


def read_manifest(path: Path) -> list[PairSpec]:
    """Every pair of ``path`` in file order. A first row ``ref,dist[,pair]`` is a header; ``#`` starts a comment.

    A pair without a name is named by its dist path as written; names must be unique.
    """
    from registry._internal.safeio import read_text_capped

    text = read_text_capped(path, "manifest", label=f"{path} (manifest)", encoding="utf-8-sig")
    base = path.parent
    out: list[PairSpec] = []
    seen: dict[str, int] = {}
    reader = csv.reader(text.splitlines())
    lineno = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over the csv module's 128 KiB limit, a NUL byte
            raise InputError(f"{path}:{reader.line_num}: not a CSV row ({exc})") from exc
        lineno = reader.line_num
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if not out and [c.lower() for c in cells] in (["ref", "dist"], ["ref", "dist", "pair"]):
            continue
        if len(cells) not in (2, 3) or not cells[0] or not cells[1]:
            raise InputError(f"{path}:{lineno}: expected ref,dist[,pair], got {len(cells)} fields")
        long = next((c for c in cells if len(c) > MAX_FIELD), None)
        if long is not None:
            raise InputError(f"{path}:{lineno}: a field of {len(long)} characters (at most {MAX_FIELD}: a path or a pair name)")
        if "\x00" in "".join(cells):
            raise InputError(f"{path}:{lineno}: a NUL character in a field")
        name = cells[2] if len(cells) == 3 and cells[2] else cells[1]
        if name in seen:
            raise InputError(f"{path}:{lineno}: pair {name!r} is already on line {seen[name]}")
        seen[name] = lineno
        out.append(PairSpec(len(out), name, base / cells[0], base / cells[1]))
    if not out:
        raise InputError(f"{path}: the manifest lists no pairs")
    return out


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based): a contiguous block, so shard outputs 0..N-1 concatenate in manifest order."""

    index: int = 0
    count: int = 1

    @staticmethod
    def parse(text: str | None) -> Shard:
        if not text:
            return Shard()
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
            raise UsageError(f"shard {text!r}: use I/N with 0 <= I < N (e.g. 0/4 .. 3/4)")
        return Shard(int(m.group(1)), int(m.group(2)))

    def take(self, pairs: list[PairSpec]) -> list[PairSpec]:
        n = len(pairs)
        return pairs[self.index * n // self.count : (self.index + 1) * n // self.count]
