"""The one safe reader: regular files only, never blocking, never more than a cap.

Every file tinyreg reads (registry documents, sidecars, models, external data, bundles,
policies, state files, journals, allowlists, input sets, manifests, Y4M, images, VMAFx
documents, libvmaf logs) is opened here:

* ``O_NONBLOCK`` so a FIFO with no writer cannot hang the open (and ``O_NOFOLLOW`` where a
  caller confined the path and wants no symlink swapped in at the last component);
* ``fstat`` of the open descriptor, and anything that is not a regular file (FIFO, character
  or block device, socket, directory) is refused with one line;
* the size from ``fstat`` is compared with the pin or the cap before a byte is read, and at most
  ``cap + 1`` bytes are read, so a file that grows while it is read is refused, never truncated.

The caps (``CAPS``) are documented in ``docs/limits.md``.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from registry.errors import InputError

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

# what -> the most bytes tinyreg reads of one such file (docs/limits.md lists the same table)
CAPS: dict[str, int] = {
    "registry": 16 * MiB,  # registry.json
    "document": 16 * MiB,  # sidecars, cards, VMAFx documents, libvmaf logs, journals, state files
    "bundle": 16 * MiB,  # signature bundles, signed statements, trusted roots
    "policy": 1 * MiB,  # trust policies, public keys, allowlists
    "key": 1 * MiB,
    "manifest": 256 * MiB,  # dataset manifests (CSV/JSON lines)
    "log": 256 * MiB,  # libvmaf feature logs (JSON or CSV, one record a frame)
    "results": 1 * GiB,  # results files read back (resume, report)
    "inputs": 2 * GiB,  # input sets (.npz / .npy)
    "model": 2 * GiB,  # ONNX protobufs cannot be larger; external data per file
    "media": 16 * GiB,  # Y4M / images: their own pixel and memory caps apply after the header
}

_CHUNK = 1 << 20


# what fstat of an open descriptor can report besides a regular file (never a symlink: open followed it or failed)
_SPECIAL = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind_name(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _SPECIAL if test(mode)), "not a regular file")


def unreadable(name: str, exc: OSError) -> InputError:
    """One line for an ``OSError`` met while opening or reading ``name``."""
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{name}: is a directory, not a regular file")
    if isinstance(exc, Refused):
        return InputError(f"{name}: {exc.strerror}")
    if exc.errno == errno.ELOOP:
        return InputError(f"{name}: is a symbolic link (refused here)")
    if exc.errno == errno.ENXIO:
        return InputError(f"{name}: is a socket or device, not a regular file")
    return InputError(f"{name}: cannot read ({exc.strerror or type(exc).__name__})")


class Refused(OSError):
    """Not a regular file, or larger than the cap: an ``OSError`` so every caller's ``except OSError`` words it."""

    def __init__(self, why: str, filename: str | os.PathLike[str] | None = None) -> None:
        super().__init__(errno.EINVAL, why, filename)

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}" if self.filename is not None else str(self.strerror)


def open_fd(path: str | os.PathLike[str], *, label: str | None = None, nofollow: bool = False) -> tuple[int, os.stat_result]:
    """Open ``path`` read-only and non-blocking, fstat it, and return (fd, stat) of a regular file.

    Raises ``Refused`` (an ``OSError``) for anything else; every ``OSError`` is left to the caller
    (it knows whether "missing" is a finding, an integrity error or bad input).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    if nofollow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        kind = _kind_name(st.st_mode)
        if kind is not None:
            raise Refused(f"is {kind}, not a regular file", path)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


@contextmanager
def open_regular(path: str | os.PathLike[str], *, label: str | None = None, nofollow: bool = False) -> Iterator[tuple[BinaryIO, int]]:
    """A binary file object of a regular file and its size (from ``fstat``)."""
    fd, st = open_fd(path, label=label, nofollow=nofollow)
    fh = os.fdopen(fd, "rb")
    with fh:
        yield fh, st.st_size


def read_raw(path: str | os.PathLike[str], cap: int | str, *, nofollow: bool = False) -> bytes:
    """``read_capped`` for callers with their own ``except OSError`` wording: every failure is an ``OSError``
    (``FileNotFoundError`` when missing, ``Refused`` for a special file or one over the cap)."""
    limit = CAPS[cap] if isinstance(cap, str) else cap
    with open_regular(path, nofollow=nofollow) as (fh, size):
        if size > limit:
            raise Refused(f"{size} bytes, more than the {_human(limit)} tinyreg reads of such a file", path)
        data = _read_at_most(fh, limit + 1)
    if len(data) > limit:
        raise Refused(f"grew past the {_human(limit)} tinyreg reads of such a file while it was read", path)
    return data


def read_capped(path: str | os.PathLike[str], cap: int | str, *, label: str | None = None, nofollow: bool = False) -> bytes:
    """The bytes of a regular file of at most ``cap`` bytes (a number, or a kind from ``CAPS``).

    One ``InputError`` line for a missing, special, unreadable or too large file.
    """
    name = label or str(path)
    try:
        return read_raw(path, cap, nofollow=nofollow)
    except OSError as exc:
        raise unreadable(name, exc) from exc


def _read_at_most(fh: BinaryIO, n: int) -> bytes:
    buf = io.BytesIO()
    while n > 0:
        chunk = fh.read(min(_CHUNK, n))
        if not chunk:
            break
        buf.write(chunk)
        n -= len(chunk)
    return buf.getvalue()


def read_text_capped(path: str | os.PathLike[str], cap: int | str, *, label: str | None = None, encoding: str = "utf-8") -> str:
    """``read_capped`` decoded; undecodable bytes are one ``InputError`` line."""
    name = label or str(path)
    data = read_capped(path, cap, label=name)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not {encoding} text ({exc.reason} at byte {exc.start})") from exc


def check_regular(path: str | os.PathLike[str], *, label: str | None = None) -> int:
    """Size of ``path`` if it is a regular file (opened non-blocking, never read); ``InputError`` otherwise.

    For readers that must hand a path to a library (PyAV, Pillow): check first, then open.
    """
    name = label or str(path)
    try:
        fd, st = open_fd(path, label=name)
    except OSError as exc:
        raise unreadable(name, exc) from exc
    os.close(fd)
    return st.st_size


def _human(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


__all__ = [
    "CAPS",
    "Refused",
    "check_regular",
    "open_fd",
    "open_regular",
    "read_capped",
    "read_raw",
    "read_text_capped",
    "unreadable",
]
