"""Atomic file replacement and an inter-process lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one.

    temp file in the same folder -> write -> fsync -> rename -> fsync folder.
    """
    folder = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is None:
            try:
                mode = path.stat().st_mode & 0o777
            except FileNotFoundError:
                mode = 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


@contextlib.contextmanager
def folder_lock(folder: Path, *, exclusive: bool) -> Iterator[int]:
    """flock on the folder itself: exclusive for writers, shared for readers.

    Nothing is created (a whole-folder signature covers every file there, and a
    read-only checkout stays untouched), nothing can be planted in its place (there
    is no lock file a symlink could replace), and every reader and writer finds the
    lock, including those racing the very first writer. Yields the locked descriptor
    (``relock`` converts it between shared and exclusive).
    """
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        from registry.errors import InputError

        raise InputError(f"{folder}: cannot open the registry folder ({exc.strerror})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield fd
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def relock(fd: int, *, exclusive: bool) -> None:
    """Convert a folder lock (not atomic: another process may run in between, so re-check after)."""
    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


@contextlib.contextmanager
def file_lock(target: Path) -> Iterator[None]:
    """Exclusive lock of the folder that holds ``target`` (writers)."""
    with folder_lock(target.parent, exclusive=True):
        yield


@contextlib.contextmanager
def shared_lock(target: Path) -> Iterator[None]:
    """Shared lock of the folder that holds ``target`` (readers), so no update is seen half done."""
    with folder_lock(target.parent, exclusive=False):
        yield
