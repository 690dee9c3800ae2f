"""Fetch pinned upstream files by path or URL; verify the pin; never leave a partial file.

Downloads are bounded and contained:

* **size**: the pinned size when it is known (``Content-Length`` over it is refused before the
  body is read, a body that runs past it is cut off), else ``DEFAULT_MAX_BYTES`` (2 GiB);
* **time**: ``DEFAULT_DEADLINE_S`` (30 minutes) for the whole download and
  ``DEFAULT_READ_TIMEOUT_S`` (60 s) without a byte;
* **where**: https only, and only https redirects; plain http only to a loopback host
  (127.0.0.0/8, ::1, localhost), for tests;
* **cleanup**: the bytes go to ``.<name>.<pid>.part`` beside the destination, removed on any
  error, Ctrl-C, SIGTERM or SIGHUP (the signal is re-raised afterwards, so the process still
  ends as the signal says); parts left by a process that no longer exists (SIGKILL) are
  removed by the next download into the same folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from registry._internal.atomic import fsync_dir
from registry._internal.hashing import read_file, sha256_bytes
from registry._internal.net import is_loopback_name
from registry.errors import InputError, IntegrityError

_CHUNK = 1 << 20
DEFAULT_MAX_BYTES = 2 << 30  # without a pinned size; the largest upstream file today is 528 MiB
DEFAULT_DEADLINE_S = 1800.0
DEFAULT_READ_TIMEOUT_S = 60.0
_SIGNALS: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyreg"


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def check_url(url: str) -> None:
    """InputError unless ``url`` is https, or http to a loopback host."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise InputError(f"not a valid URL: {url!r}") from exc
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and is_loopback_name(host):
        return
    raise InputError(f"refusing {url!r}: only https URLs are fetched (plain http only from a loopback host)")


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL that :func:`check_url` accepts (no ftp:, file:, http:)."""

    max_redirections = 5

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        check_url(urllib.parse.urljoin(req.full_url, newurl))
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Terminated(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """While inside, SIGTERM/SIGHUP with their default action raise _Terminated instead of
    killing the process at once, so ``finally`` blocks run (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated(signum)

    saved: dict[int, Any] = {}
    for sig in _SIGNALS:
        if signal.getsignal(sig) is signal.SIG_DFL:  # leave handlers someone else installed alone
            saved[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def _sweep_stale_parts(folder: Path) -> None:
    """Remove ``.*.<pid>.part`` files whose writer process no longer exists."""
    with contextlib.suppress(OSError):
        for p in folder.glob(".*.part"):
            pid_text = p.name[: -len(".part")].rsplit(".", 1)[-1]
            if not pid_text.isdigit():
                continue
            try:
                os.kill(int(pid_text), 0)
            except ProcessLookupError:
                with contextlib.suppress(OSError):
                    p.unlink()
            except OSError:
                pass


def _download(url: str, dest: Path, sha256: str, progress: bool, *, size: int | None, max_bytes: int,
              deadline_s: float, read_timeout_s: float) -> None:
    check_url(url)
    cap = size if size is not None else max_bytes
    dest.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_parts(dest.parent)
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.part"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # our pid's name: left by an earlier process that had this pid
    h = hashlib.sha256()
    start = time.monotonic()
    try:
        with _signals_raise():
            try:
                _fetch_into(url, tmp, h, cap, size, progress, start, deadline_s, read_timeout_s, dest.name)
                got = h.hexdigest()
                if got != sha256:
                    raise IntegrityError(f"{url}: sha256 {got[:16]}... != pin {sha256[:16]}...; download discarded")
                os.replace(tmp, dest)
                fsync_dir(dest.parent)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
    except _Terminated as exc:  # the part file is gone; now end the way the signal asks
        signal.raise_signal(exc.signum)
        raise InputError(f"download of {url} interrupted by signal {exc.signum}") from None


def _fetch_into(url: str, tmp: Path, h: Any, cap: int, size: int | None, progress: bool, start: float,
                deadline_s: float, read_timeout_s: float, label: str) -> None:
    opener = urllib.request.build_opener(_SafeRedirect())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        try:
            resp = opener.open(url, timeout=read_timeout_s)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InputError(f"cannot download {url}: {reason}") from exc
        with resp:
            check_url(resp.geturl())
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > cap:
                raise InputError(f"{url}: {total} bytes announced, over the cap of {cap} bytes"
                                 f"{' (the pinned size)' if size is not None else ''}")
            bar = None
            if progress:
                from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

                bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                               TransferSpeedColumn(), transient=True)
                bar.start()
                task = bar.add_task(label, total=total or size)
            got = 0
            try:
                while True:
                    if time.monotonic() - start > deadline_s:
                        raise InputError(f"download of {url} took longer than {deadline_s:g} s; discarded")
                    try:
                        chunk = resp.read1(_CHUNK)  # returns as soon as some bytes arrive
                    except OSError as exc:
                        raise InputError(f"download of {url} broke off: {exc}") from exc
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > cap:
                        raise InputError(f"{url}: body runs past {cap} bytes"
                                         f"{' (the pinned size)' if size is not None else ' (the download cap)'}; discarded")
                    h.update(chunk)
                    out.write(chunk)
                    if bar is not None:
                        bar.update(task, advance=len(chunk))
            finally:
                if bar is not None:
                    bar.stop()
        if size is not None and got != size:
            raise IntegrityError(f"{url}: {got} bytes does not match the pinned size {size}; download discarded")
        out.flush()
        os.fsync(out.fileno())


def fetch_pinned(
    source: str,
    sha256: str,
    filename: str,
    *,
    size: int | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_s: float = DEFAULT_DEADLINE_S,
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
) -> bytes:
    """Bytes of ``source`` (a local path or an https URL) that match ``sha256`` (and ``size`` when given).

    URLs are downloaded once into the cache (``<cache>/<sha256>/<filename>``) within the
    bounds in the module docstring; a cached copy is re-hashed before use. The returned
    bytes are the hashed bytes, so callers load exactly what was verified.
    """
    sha256 = sha256.lower()
    if is_url(source):
        dest = (cache_dir or default_cache_dir()) / sha256 / filename
        if not dest.exists():
            _download(source, dest, sha256, progress, size=size, max_bytes=max_bytes, deadline_s=deadline_s,
                      read_timeout_s=read_timeout_s)
        path = dest
    else:
        path = Path(source)
    if size is not None:
        try:
            actual = path.stat().st_size
        except OSError:
            actual = None
        if actual is not None and actual != size:
            if is_url(source):
                with contextlib.suppress(OSError):
                    path.unlink()
            raise IntegrityError(f"{source}: {actual} bytes does not match the pinned size {size}")
    data = read_file(path, source, cap="model")
    got = sha256_bytes(data).sha256
    if got != sha256:
        if is_url(source):
            with contextlib.suppress(OSError):
                path.unlink()
        raise IntegrityError(f"{source}: sha256 {got[:16]}... does not match the pin {sha256[:16]}...")
    return data
