"""The content-addressed blob cache: ``<cache>/oci/blobs/sha256/<hex>``, each blob re-hashed before use.

A blob is streamed into ``<hex>.part`` (capped at its declared size, hashed as it
arrives) and renamed to ``<hex>`` only when its sha256 matches; a pull killed mid-blob
leaves the ``.part``, which the next pull hashes and resumes with an HTTP Range request.
Nothing here is trusted on its way back out: a cached blob (or a resumed ``.part``) is
opened without following symlinks, must be a regular file of the declared size, and is
hashed again; anything else is discarded and fetched afresh. The cache root is
``$TINYREG_CACHE_DIR``, else ``$XDG_CACHE_HOME/tinyreg``, else ``~/.cache/tinyreg``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from registry.distribution.oci import CHUNK, Transport, TransportError, iter_body
from registry.errors import InputError, IntegrityError

_HEX = re.compile(r"[0-9a-f]{64}")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def cache_root() -> Path:
    env = os.environ.get("TINYREG_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tinyreg"


def real_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and refuse it when it is a symlink or not a folder."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        st = os.lstat(path)
    except OSError as exc:
        raise InputError(f"cache folder {path} cannot be created ({exc.strerror}); set TINYREG_CACHE_DIR") from exc
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise InputError(f"cache folder {path} is a symlink or not a folder; refusing to use it")
    return path


def _hash_fd(fd: int, limit: int) -> tuple[hashlib._Hash, int]:
    h = hashlib.sha256()
    got = 0
    os.lseek(fd, 0, os.SEEK_SET)
    while got < limit:
        chunk = os.read(fd, min(CHUNK, limit - got))
        if not chunk:
            break
        h.update(chunk)
        got += len(chunk)
    return h, got


class BlobCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else cache_root() / "oci"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs" / "sha256"

    def _dir(self) -> Path:
        real_dir(self.root)
        real_dir(self.root / "blobs")
        return real_dir(self.blobs)

    def staging(self) -> Path:
        """A fresh scratch folder; those a killed pull left behind for more than a day are removed first."""
        import shutil
        import tempfile
        import time

        root = real_dir(self.root / "staging")
        with contextlib.suppress(OSError):
            for old in root.iterdir():
                st = os.lstat(old)
                if stat.S_ISDIR(st.st_mode) and old.name.startswith("pull-") and st.st_mtime < time.time() - 86400:
                    shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix="pull-", dir=root))

    def verified(self, digest: str, size: int) -> Path | None:
        """The cached blob's path when it is a regular file of ``size`` bytes hashing to ``digest``; else None (discarded)."""
        hexd = _hex(digest)
        path = self._dir() / hexd
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC)  # a planted FIFO must not block
        except FileNotFoundError:
            return None
        except OSError:  # a symlink (ELOOP) or something unreadable: not ours
            _discard(path)
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != size:
                _discard(path)
                return None
            h, got = _hash_fd(fd, size + 1)
        finally:
            os.close(fd)
        if got != size or h.hexdigest() != hexd:
            _discard(path)
            return None
        return path

    def fetch(
        self, transport: Transport, repo: str, digest: str, size: int, *, progress: Callable[[int], None] | None = None,
    ) -> tuple[Path, bool]:
        """(the blob in the cache, verified; True when it was already there) -- downloaded (resuming a ``.part``) if not."""
        hit = self.verified(digest, size)
        if hit is not None:
            if progress:
                progress(size)
            return hit, True
        hexd = _hex(digest)
        folder = self._dir()
        part = folder / f"{hexd}.part"
        with _open_part(part) as fd:
            hit = self.verified(digest, size)  # another process finished it while we waited for the lock
            if hit is not None:
                return hit, True
            h, have = _hash_fd(fd, size + 1)
            if have > size:
                os.ftruncate(fd, 0)
                h, have = hashlib.sha256(), 0
            if have == size and h.hexdigest() != hexd:
                os.ftruncate(fd, 0)
                h, have = hashlib.sha256(), 0
            if have < size:
                resumed = have > 0
                h, have = _download(transport, repo, digest, size, fd, h, have, progress)
                if resumed and h.hexdigest() != hexd:  # the kept part was bad (or planted): once more from zero
                    os.ftruncate(fd, 0)
                    h, have = _download(transport, repo, digest, size, fd, hashlib.sha256(), 0, progress)
            if h.hexdigest() != hexd:
                os.ftruncate(fd, 0)
                _discard(part)
                raise IntegrityError(f"blob {digest[:19]}...: the registry sent bytes with sha256 {h.hexdigest()[:16]}...; "
                                     "discarded, nothing written")
            # no fsync: a blob torn by a crash fails its re-hash on the next use; the transaction syncs what lands
            final = folder / hexd
            if os.path.lexists(final):
                _discard(final)
            os.replace(part, final)
        return final, False


def _hex(digest: str) -> str:
    if not digest.startswith("sha256:") or not _HEX.fullmatch(digest[7:]):
        raise InputError(f"{digest[:80]!r} is not a sha256 digest")
    return digest[7:]


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
        os.unlink(path)


@contextlib.contextmanager
def _open_part(part: Path) -> Iterator[int]:
    """The ``.part`` file, opened without following symlinks and locked (two pulls never write one blob)."""
    try:
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC, 0o644)
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a planted FIFO or device: not ours
            os.close(fd)
            raise IsADirectoryError
    except OSError:
        _discard(part)  # a planted symlink, FIFO or device
        try:
            fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644)
        except OSError as exc:
            raise InputError(f"cache file {part} cannot be opened ({exc.strerror})") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"cache file {part} is not a regular file")
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _download(
    transport: Transport, repo: str, digest: str, size: int, fd: int, h: hashlib._Hash, have: int,
    progress: Callable[[int], None] | None,
) -> tuple[hashlib._Hash, int]:
    what = f"blob {digest[:19]}... from {transport.host}/{repo}"
    resp = transport.open_blob(repo, digest, have)
    try:
        if resp.status == 206:
            rng = resp.headers.get("content-range", "")
            m = re.fullmatch(r"bytes ([0-9]+)-([0-9]+)/([0-9]+|\*)", rng.strip())
            if not m or int(m.group(1)) != have:
                raise TransportError(f"{what}: a partial answer for the wrong range ({rng[:60]!r})")
        elif have:
            os.ftruncate(fd, 0)  # the server ignored the Range request: start again
            h, have = hashlib.sha256(), 0
        length = resp.headers.get("content-length")
        if length and length.isdigit() and have + int(length) > size:
            raise TransportError(f"{what}: {length} bytes announced, over its declared size {size}; refused")
        if progress and have:
            progress(have)
        os.lseek(fd, have, os.SEEK_SET)
        for chunk in iter_body(resp, deadline=transport.deadline(size - have), what=what):
            if have + len(chunk) > size:
                os.ftruncate(fd, 0)
                raise IntegrityError(f"{what}: the body runs past its declared size {size}; discarded")
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
            h.update(chunk)
            have += len(chunk)
            if progress:
                progress(len(chunk))
    finally:
        resp.close()
    if have != size:
        raise TransportError(f"{what}: the transfer ended after {have} of {size} bytes (run the pull again to resume)")
    return h, have
