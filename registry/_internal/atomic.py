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
def _flocked(fd: int, operation: int) -> Iterator[None]:
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def file_lock(target: Path) -> Iterator[None]:
    """Exclusive advisory lock next to ``target`` (``.<name>.lock``), for writers."""
    with _flocked(os.open(_lock_path(target), os.O_RDWR | os.O_CREAT, 0o644), fcntl.LOCK_EX):
        yield


@contextlib.contextmanager
def shared_lock(target: Path) -> Iterator[None]:
    """Shared lock for readers, so a writer's multi-file update is never seen half done.

    Readers never create the lock file (a read-only registry stays untouched); where
    no writer has ever run, there is nothing to wait for.
    """
    try:
        fd = os.open(_lock_path(target), os.O_RDONLY)
    except OSError:
        yield
        return
    with _flocked(fd, fcntl.LOCK_SH):
        yield
