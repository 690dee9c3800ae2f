"""The one sha256 helper: stream files, hash bytes, read pinned bytes."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from registry.errors import InputError, IntegrityError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int


def sha256_bytes(data: bytes | bytearray | memoryview) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


def _unreadable(name: str, exc: OSError) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{name}: is a directory, not a file")
    return InputError(f"{name}: cannot read ({exc.strerror})")


def sha256_file(path: str | os.PathLike[str]) -> Digest:
    """Stream a file through sha256 (no full read into memory)."""
    try:
        with open(path, "rb") as fh:
            h = hashlib.file_digest(fh, "sha256")
            size = fh.tell()
    except OSError as exc:
        raise _unreadable(str(path), exc) from exc
    return Digest(h.hexdigest(), size)


def _mismatch(name: str, got: Digest, sha256: str) -> IntegrityError:
    return IntegrityError(f"{name}: sha256 {got.sha256[:16]}... != pinned {sha256[:16]}...; refusing to load")


def read_pinned(path: Path, sha256: str, size: int | None = None) -> bytes:
    """Read a file once, hash those bytes, and return them only if they match.

    The size pin is compared first (one ``fstat`` of the open file), so a huge
    file pinned small is refused without being read. The caller parses or loads
    exactly the returned buffer, so what was hashed is what is used (no second
    open by path).
    """
    try:
        with open(path, "rb") as fh:
            actual = os.fstat(fh.fileno()).st_size
            if size is not None and actual != size:
                raise IntegrityError(f"{path.name}: size {actual} != pinned {size}; refusing to load")
            # never more than the pin allows (the file may grow while it is read)
            data = fh.read() if size is None else fh.read(size + 1)
    except FileNotFoundError as exc:
        raise IntegrityError(f"{path.name}: pinned file is missing") from exc
    except OSError as exc:
        raise _unreadable(str(path), exc) from exc
    got = sha256_bytes(data)
    if size is not None and got.size != size:
        raise IntegrityError(f"{path.name}: size {got.size} != pinned {size}; refusing to load")
    if got.sha256 != sha256.lower():
        raise _mismatch(path.name, got, sha256)
    return data


def check_pinned_file(path: Path, sha256: str, size: int | None = None) -> Digest:
    """Stream ``path`` through sha256 after comparing its size pin; raise IntegrityError on a mismatch.

    Never reads a file whose size already disagrees with its pin.
    """
    try:
        with open(path, "rb") as fh:
            actual = os.fstat(fh.fileno()).st_size
            if size is not None and actual != size:
                raise IntegrityError(f"{path.name}: size {actual} != pinned {size}")
            h = hashlib.file_digest(fh, "sha256")
            got = Digest(h.hexdigest(), fh.tell())
    except FileNotFoundError as exc:
        raise IntegrityError(f"{path.name}: pinned file is missing") from exc
    except OSError as exc:
        raise _unreadable(str(path), exc) from exc
    if size is not None and got.size != size:
        raise IntegrityError(f"{path.name}: size {got.size} != pinned {size}")
    if got.sha256 != sha256.lower():
        raise IntegrityError(f"{path.name}: sha256 {got.sha256[:16]}... != pinned {sha256[:16]}...")
    return got


def read_file(path: Path, label: str | None = None) -> bytes:
    """Read a whole file or raise InputError with one clear line."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(label or str(path), exc) from exc
