"""Keep every path inside the registry folder."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from registry.errors import PathEscape


def confine(root: Path, rel: str, *, what: str = "path") -> Path:
    """Resolve ``rel`` (as written in a registry) under ``root`` or raise PathEscape.

    Rejects absolute paths, backslashes, ``..`` components, empty names, NUL, and
    any symlink along the way that resolves outside ``root``. The file itself
    need not exist.
    """
    if not isinstance(rel, str) or not rel:
        raise PathEscape(f"{what}: empty path")
    if "\x00" in rel or "\\" in rel:
        raise PathEscape(f"{what} {rel!r}: forbidden character")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or rel.startswith("~"):
        raise PathEscape(f"{what} {rel!r}: absolute paths are not allowed")
    parts = rel.split("/")
    if ".." in parts:
        raise PathEscape(f"{what} {rel!r}: '..' leaves the registry folder")
    if any(part in ("", ".") for part in parts):
        raise PathEscape(f"{what} {rel!r}: not a normalised relative path")
    root_real = Path(os.path.realpath(root))
    target = root_real.joinpath(*pure.parts)
    real = Path(os.path.realpath(target))
    if real != root_real and root_real not in real.parents:
        raise PathEscape(f"{what} {rel!r}: resolves outside the registry folder (symlink?)")
    return target

