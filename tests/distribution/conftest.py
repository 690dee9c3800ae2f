"""A real OCI registry (Debian's ``docker-registry``, CNCF distribution 2.8) on 127.0.0.1, and a hostile proxy.

The registry runs per test on a free port with a temporary storage folder. Where CI runs
(``CI`` set) a missing binary fails the test: ``make test`` installs it. ``Proxy`` relays
to the real registry except for the paths a test overrides, so a test plays a registry
operator who serves whatever bytes they like.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.factories import Signed, make_signed


def need_tool(name: str, package: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        msg = f"{name} is missing (Debian package {package}; 'make test' installs it)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OciServer:
    port: int
    storage: Path
    proc: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ref(self, repo: str = "tiny/dists", tag: str = "dists_vgg16") -> str:
        return f"oci://{self.host}/{repo}:{tag}"

    def blob_file(self, digest: str) -> Path:
        hexd = digest.removeprefix("sha256:")
        return self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"


@pytest.fixture
def oci(tmp_path: Path) -> Iterator[OciServer]:
    exe = need_tool("docker-registry", "docker-registry")
    port = free_port()
    storage = tmp_path / "oci-storage"
    storage.mkdir()
    cfg = tmp_path / "oci-config.yml"
    cfg.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
                   f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([exe, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/v2/")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"docker-registry did not start on port {port}")
            time.sleep(0.05)
        yield OciServer(port, storage, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def _signed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("signed-template")
    make_signed(base)
    return base


@pytest.fixture
def signed(_signed_template: Path, tmp_path: Path) -> Signed:
    """The shipped registry signed with a key (tests/signing/test_trust.py make_signed), a fresh copy per test."""
    dst = tmp_path / "maintainer"
    shutil.copytree(_signed_template, dst, symlinks=True)
    keys = dst / "keys"
    return Signed(dst / "model" / "tiny" / "registry.json", keys / "maintainer.pem", keys / "maintainer.pub.pem", keys / "trust.json")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("TINYREG_CACHE_DIR", str(cache))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    return cache


def tree(folder: Path) -> dict[str, bytes] | None:
    """Every file under ``folder`` with its bytes (None: the folder does not exist): DEST byte for byte."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


Override = Callable[[http.server.BaseHTTPRequestHandler], None]


@dataclass
class Proxy:
    """A registry front that relays to ``upstream`` except where ``overrides`` (path -> handler) say otherwise."""

    upstream: int
    overrides: dict[str, Override] = field(default_factory=dict)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Range header)
    stop: threading.Event = field(default_factory=threading.Event)
    require: str | None = None  # an Authorization header every request (but /token) must carry
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    def ref(self, repo: str = "tiny/dists", tag: str = "dists_vgg16") -> str:
        return f"oci://{self.host}/{repo}:{tag}"


@pytest.fixture
def proxy(oci: OciServer) -> Iterator[Proxy]:
    px = Proxy(oci.port)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _relay(self) -> None:
            path = self.path.split("?", 1)[0]
            px.seen.append((self.command, path, self.headers.get("Range", "")))
            if px.require is not None and path != "/token" and self.headers.get("Authorization") != px.require:
                kind = px.require.split(" ", 1)[0]
                realm = 'Basic realm="tinyreg-test"' if kind == "Basic" else (
                    f'Bearer realm="http://{px.host}/token",service="test",scope="repository:tiny/dists:pull"')
                respond(401, b"{}", {"WWW-Authenticate": realm})(self)
                return
            if path in px.overrides:
                px.overrides[path](self)
                return
            c = http.client.HTTPConnection("127.0.0.1", px.upstream, timeout=10)
            hdrs = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range", "authorization")}
            c.request(self.command, self.path, headers=hdrs)
            r = c.getresponse()
            body = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = _relay
        do_HEAD = _relay

    px.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    px.server.daemon_threads = True
    thread = threading.Thread(target=px.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield px
    finally:
        px.stop.set()
        px.server.shutdown()
        px.server.server_close()


def respond(status: int, body: bytes, headers: dict[str, str] | None = None) -> Override:
    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
    return handler
