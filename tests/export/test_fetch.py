"""Downloads against a local 127.0.0.1 server: size and time caps, redirects, cleanup on any exit."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from registry.errors import InputError, IntegrityError
from registry.export.fetch import check_url, fetch_pinned

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
ZERO_SHA = "0" * 64


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _redirect(self, where: str) -> None:
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path == "/ok":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/to-ok":
            self._redirect(f"http://127.0.0.1:{port}/ok")
        elif self.path == "/to-ftp":
            self._redirect("ftp://127.0.0.1/vgg16.pth")
        elif self.path == "/to-file":
            self._redirect("file:///etc/passwd")
        elif self.path == "/to-http-remote":
            self._redirect("http://example.com/vgg16.pth")
        elif self.path == "/big-length":
            self.send_response(200)
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
        elif self.path in ("/endless", "/trickle"):
            self.send_response(200)
            self.end_headers()
            chunk = b"\0" * (65536 if self.path == "/endless" else 16)
            try:
                while True:
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    time.sleep(0.002 if self.path == "/endless" else 0.2)
            except OSError:
                return
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def leftovers(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def test_ok_and_cached(server: str, tmp_path: Path) -> None:
    data = fetch_pinned(f"{server}/to-ok", SHA, "w.bin", size=len(PAYLOAD), cache_dir=tmp_path, progress=False)
    assert data == PAYLOAD
    assert leftovers(tmp_path) == [tmp_path / SHA / "w.bin"]
    assert fetch_pinned(f"{server}/gone", SHA, "w.bin", cache_dir=tmp_path, progress=False) == PAYLOAD  # from the cache


def test_endless_body_capped_at_pinned_size(server: str, tmp_path: Path) -> None:
    t = time.monotonic()
    with pytest.raises(InputError, match=r"body runs past 200000 bytes \(the pinned size\)"):
        fetch_pinned(f"{server}/endless", ZERO_SHA, "w.bin", size=200_000, cache_dir=tmp_path, progress=False)
    assert time.monotonic() - t < 30
    assert leftovers(tmp_path) == []


def test_endless_body_capped_without_pin(server: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"body runs past 1000000 bytes \(the download cap\)"):
        fetch_pinned(f"{server}/endless", ZERO_SHA, "w.bin", cache_dir=tmp_path, progress=False, max_bytes=1_000_000)
    assert leftovers(tmp_path) == []


def test_announced_length_over_cap_refused(server: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="1000000000000 bytes announced, over the cap"):
        fetch_pinned(f"{server}/big-length", ZERO_SHA, "w.bin", size=1000, cache_dir=tmp_path, progress=False)
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_deadline(server: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="took longer than 1 s"):
        fetch_pinned(f"{server}/trickle", ZERO_SHA, "w.bin", cache_dir=tmp_path, progress=False, deadline_s=1.0)
    assert leftovers(tmp_path) == []


def test_size_pin_mismatch(server: str, tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="300000 bytes does not match the pinned size 300001"):
        fetch_pinned(f"{server}/ok", SHA, "w.bin", size=300_001, cache_dir=tmp_path, progress=False)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("path", "match"), [
    ("/to-ftp", "refusing 'ftp://.*only https"),
    ("/to-http-remote", "refusing 'http://example.com.*only https"),
    ("/to-file", "Redirection to url 'file:///etc/passwd' is not allowed"),  # urllib's own refusal, before ours
])
def test_only_https_redirects(server: str, tmp_path: Path, path: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        fetch_pinned(f"{server}{path}", SHA, "w.bin", cache_dir=tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_check_url() -> None:
    check_url("https://download.pytorch.org/models/vgg16-397923af.pth")
    for ok in ("http://127.0.0.1:8000/x", "http://localhost/x", "http://[::1]/x", "http://127.1.2.3/x"):
        check_url(ok)
    for bad in ("http://example.com/x", "ftp://example.com/x", "file:///etc/passwd", "https:///nohost", "http://10.0.0.1/x",
                "http://127.0.0.1.example.com/x"):
        with pytest.raises(InputError, match=r"refusing|not a valid URL"):
            check_url(bad)


def test_sigterm_mid_download_leaves_nothing(server: str, tmp_path: Path) -> None:
    code = ("from pathlib import Path\nfrom registry.export.fetch import fetch_pinned\n"
            f"fetch_pinned('{server}/endless', '{ZERO_SHA}', 'w.bin', cache_dir=Path('{tmp_path}'), progress=False)\n")
    p = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(f.name.endswith(".part") and f.stat().st_size > 0 for f in leftovers(tmp_path)):
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == -signal.SIGTERM  # still ends as SIGTERM says
    assert leftovers(tmp_path) == []


def test_stale_part_of_a_dead_process_removed(server: str, tmp_path: Path) -> None:
    folder = tmp_path / SHA
    folder.mkdir()
    dead = folder / f".w.bin.{(1 << 22) + 1}.part"  # above Linux's largest pid: no such process
    dead.write_bytes(b"x")
    alive = folder / f".w.bin.{os.getppid()}.part"
    alive.write_bytes(b"y")
    fetch_pinned(f"{server}/ok", SHA, "w.bin", cache_dir=tmp_path, progress=False)
    assert not dead.exists() and alive.exists()


def test_cli_export_refuses_ftp_redirect(server: str, tmp_path: Path) -> None:
    from registry.store.document import init_registry

    reg = init_registry(tmp_path / "reg")
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    p = subprocess.run([sys.executable, "-m", "registry", "export", "dists", "--weight", f"vgg16={server}/to-ftp#{ZERO_SHA}",
                        "--registry", str(reg)], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == ["tinyreg: refusing 'ftp://127.0.0.1/vgg16.pth': only https URLs are fetched "
                                             "(plain http only from a loopback host)"]
    assert leftovers(tmp_path / "cache") == []
