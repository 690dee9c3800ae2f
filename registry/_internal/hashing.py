"""The one sha256 helper: stream files, hash bytes, read pinned bytes (all through ``safeio``)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from registry._internal.safeio import CAPS, open_regular, read_capped, unreadable
from registry.errors import InputError, IntegrityError


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int


def sha256_bytes(data: bytes | bytearray | memoryview) -> Digest:
    return Digest(hashlib.sha256(data).hexdigest(), len(data))


def hash_stream(read: Callable[[int], bytes], limit: int | None = None) -> Digest:
    """sha256 of what ``read(n)`` yields until it is exhausted, in 1 MiB reads; with ``limit``, stop once more
    than ``limit`` bytes were read (the caller compares the returned size: a file that grew past its cap)."""
    h = hashlib.sha256()
    n = 0
    while limit is None or n <= limit:
        chunk = read(1 << 20)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    return Digest(h.hexdigest(), n)


def sha256_file(path: str | os.PathLike[str], cap: int = CAPS["model"]) -> Digest:
    """Stream a regular file through sha256 (no full read into memory, at most ``cap`` bytes)."""
    name = str(path)
    try:
        with open_regular(path, label=name) as (fh, size):
            if size > cap:
                raise InputError(f"{name}: {size} bytes, more than the {cap} bytes tinyreg hashes of such a file")
            got = hash_stream(fh.read, cap)
    except OSError as exc:
        raise unreadable(name, exc) from exc
    if got.size > cap:
        raise InputError(f"{name}: grew past {cap} bytes while it was hashed")
    return got


def _mismatch(name: str, got: Digest, sha256: str) -> IntegrityError:
    return IntegrityError(f"{name}: sha256 {got.sha256[:16]}... != pinned {sha256[:16]}...; refusing to load")


def read_pinned(path: Path, sha256: str, size: int | None = None, cap: int = CAPS["model"]) -> bytes:
    """Read a regular file once, hash those bytes, and return them only if they match.

    The size pin is compared first (one ``fstat`` of the open file), so a huge
    file pinned small is refused without being read; FIFOs, devices and sockets are
    refused without blocking. The caller parses or loads exactly the returned buffer,
    so what was hashed is what is used (no second open by path).
    """
    try:
        with open_regular(path, label=path.name) as (fh, actual):
            if size is not None and actual != size:
                raise IntegrityError(f"{path.name}: size {actual} != pinned {size}; refusing to load")
            limit = cap if size is None else size
            if actual > limit:
                raise IntegrityError(f"{path.name}: {actual} bytes, more than {limit}; refusing to load")
            # never more than the pin allows (the file may grow while it is read)
            data = fh.read(limit + 1)
    except FileNotFoundError as exc:
        raise IntegrityError(f"{path.name}: pinned file is missing") from exc
    except OSError as exc:
        raise unreadable(str(path), exc) from exc
    got = sha256_bytes(data)
    if size is not None and got.size != size:
        raise IntegrityError(f"{path.name}: size {got.size} != pinned {size}; refusing to load")
    if got.sha256 != sha256.lower():
        raise _mismatch(path.name, got, sha256)
    return data


def check_pinned_file(path: Path, sha256: str, size: int | None = None, cap: int = CAPS["model"]) -> Digest:
    """Stream ``path`` through sha256 after comparing its size pin; raise IntegrityError on a mismatch.

    Never reads a file whose size already disagrees with its pin, nor anything but a regular file.
    """
    try:
        with open_regular(path, label=path.name) as (fh, actual):
            if size is not None and actual != size:
                raise IntegrityError(f"{path.name}: size {actual} != pinned {size}")
            limit = cap if size is None else size
            if actual > limit:
                raise IntegrityError(f"{path.name}: {actual} bytes, more than {limit}")
            got = hash_stream(fh.read, limit)
    except FileNotFoundError as exc:
        raise IntegrityError(f"{path.name}: pinned file is missing") from exc
    except OSError as exc:
        raise unreadable(str(path), exc) from exc
    if size is not None and got.size != size:
        raise IntegrityError(f"{path.name}: size {got.size} != pinned {size}")
    if got.sha256 != sha256.lower():
        raise IntegrityError(f"{path.name}: sha256 {got.sha256[:16]}... != pinned {sha256[:16]}...")
    return got


def read_file(path: Path, label: str | None = None, cap: int | str = "document") -> bytes:
    """Read a whole regular file of at most ``cap`` bytes (a number or a ``safeio.CAPS`` kind) or raise InputError."""
    return read_capped(path, cap, label=label or str(path))
