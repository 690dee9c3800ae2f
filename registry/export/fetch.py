"""Fetch pinned upstream files by path or URL; verify the pin; never leave a partial file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from registry._internal.atomic import fsync_dir
from registry._internal.hashing import read_file, sha256_bytes
from registry.errors import InputError, IntegrityError

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyreg"


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _download(url: str, dest: Path, sha256: str, progress: bool) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                resp = urllib.request.urlopen(url, timeout=60)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise InputError(f"cannot download {url}: {reason}") from exc
            with resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                bar = None
                if progress:
                    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

                    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                   TransferSpeedColumn(), transient=True)
                    bar.start()
                    task = bar.add_task(dest.name, total=total)
                try:
                    while True:
                        try:
                            chunk = resp.read(_CHUNK)
                        except OSError as exc:
                            raise InputError(f"download of {url} broke off: {exc}") from exc
                        if not chunk:
                            break
                        h.update(chunk)
                        out.write(chunk)
                        if bar is not None:
                            bar.update(task, advance=len(chunk))
                finally:
                    if bar is not None:
                        bar.stop()
            out.flush()
            os.fsync(out.fileno())
        got = h.hexdigest()
        if got != sha256:
            raise IntegrityError(f"{url}: sha256 {got[:16]}... != pin {sha256[:16]}...; download discarded")
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def fetch_pinned(source: str, sha256: str, filename: str, *, cache_dir: Path | None = None, progress: bool = True) -> bytes:
    """Bytes of ``source`` (a local path or an http(s) URL) that match ``sha256``.

    URLs are downloaded once into the cache (``<cache>/<sha256>/<filename>``);
    a cached copy is re-hashed before use. The returned bytes are the hashed
    bytes, so callers load exactly what was verified.
    """
    sha256 = sha256.lower()
    if is_url(source):
        dest = (cache_dir or default_cache_dir()) / sha256 / filename
        if not dest.exists():
            _download(source, dest, sha256, progress)
        path = dest
    else:
        path = Path(source)
    data = read_file(path, source)
    got = sha256_bytes(data).sha256
    if got != sha256:
        if is_url(source):
            with contextlib.suppress(OSError):
                path.unlink()
        raise IntegrityError(f"{source}: sha256 {got[:16]}... does not match the pin {sha256[:16]}...")
    return data
