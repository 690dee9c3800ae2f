"""OCI distribution transport: references, credentials, and the HTTP calls push and pull make.

Standard library only (``http.client``): every response body is read in chunks under a
cap and an overall deadline, redirects are followed by hand (https targets only, and the
``Authorization`` header never follows a redirect to another origin), and the bearer-token
flow of ``WWW-Authenticate`` is done here. Nothing in this module trusts what it reads:
callers hash and verify (``pull.py``).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import ssl
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from registry._internal.net import is_loopback_name
from registry.errors import InputError, UsageError

SCHEME = "oci://"
DEFAULT_TIMEOUT_S = 30.0
MIN_RATE = 64 * 1024  # bytes/s a body must sustain on average (slow-drip servers are cut off)
MAX_DOCUMENT = 4 * 1024 * 1024  # manifests, indexes, token answers
MAX_REDIRECTS = 5
CHUNK = 1024 * 1024

# the OCI distribution grammar
_REPO = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


class TransportError(InputError):
    """The registry could not be reached, refused, or answered something unusable."""


@dataclass(frozen=True)
class Ref:
    """``oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]``."""

    host: str
    repo: str
    tag: str | None = None
    digest: str | None = None

    @staticmethod
    def parse(text: str, *, default_tag: str | None = None) -> Ref:
        if not isinstance(text, str) or not text.startswith(SCHEME):
            raise UsageError(f"{text!r}: an OCI reference is oci://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]")
        rest = text[len(SCHEME):]
        host, sep, path = rest.partition("/")
        if not sep or not _HOST.fullmatch(host) or not path:
            raise UsageError(f"{text!r}: an OCI reference is oci://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]")
        digest = None
        if "@" in path:
            path, digest = path.split("@", 1)
            if not _DIGEST.fullmatch(digest):
                raise UsageError(f"{text!r}: the digest must be sha256:<64 lowercase hex>")
        tag = None
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            path, tag = path.rsplit(":", 1)
            if not _TAG.fullmatch(tag):
                raise UsageError(f"{text!r}: {tag!r} is not a valid OCI tag")
        if not _REPO.fullmatch(path) or len(path) > 255:
            raise UsageError(f"{text!r}: {path!r} is not a valid OCI repository name (lowercase, digits, . _ - /)")
        if tag is None and digest is None:
            if default_tag is None:
                raise UsageError(f"{text!r}: name a tag (:TAG) or a digest (@sha256:...)")
            if not _TAG.fullmatch(default_tag):
                raise UsageError(f"{default_tag!r} is not a valid OCI tag; name one in the reference (:TAG)")
            tag = default_tag
        return Ref(host, path, tag, digest)

    @property
    def reference(self) -> str:
        """What goes in ``/manifests/<reference>``: the digest when pinned, else the tag."""
        return self.digest or str(self.tag)

    def __str__(self) -> str:
        out = f"{SCHEME}{self.host}/{self.repo}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_digest(self, digest: str) -> str:
        return f"{SCHEME}{self.host}/{self.repo}@{digest}"


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    return is_loopback_name(name)


# --------------------------------------------------------------------------- credentials


def docker_config_path() -> Path:
    env = os.environ.get("DOCKER_CONFIG")
    return (Path(env) if env else Path.home() / ".docker") / "config.json"


def _host_key(key: str) -> str:
    k = key.strip()
    if "://" in k:
        k = k.split("://", 1)[1]
    return k.split("/", 1)[0].lower()


def credentials_for(host: str, config: Path | None = None) -> tuple[str, str] | None:
    """(user, password) for ``host`` from Docker's ``config.json`` ``auths`` (``auth`` or username/password).

    Credential helpers (``credsStore``/``credHelpers``) are not run: a host served only by a
    helper is contacted anonymously (docs/distribution.md).
    """
    from registry._internal.jsonio import loads_json
    from registry._internal.safeio import read_raw

    path = config or docker_config_path()
    try:
        data = read_raw(path, MAX_DOCUMENT)  # a regular file only: a FIFO in its place must not hang the pull
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the Docker config ({exc.strerror})") from exc
    if len(data) > MAX_DOCUMENT:
        raise InputError(f"{path}: Docker config over {MAX_DOCUMENT} bytes")
    doc = loads_json(data, str(path))
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        return None
    want = host.lower()
    for key, val in auths.items():
        if _host_key(str(key)) != want or not isinstance(val, dict):
            continue
        if isinstance(val.get("auth"), str) and val["auth"]:
            try:
                user, _, pw = base64.b64decode(val["auth"], validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise InputError(f"{path}: auths[{key!r}].auth is not base64 of user:password") from exc
            return user, pw
        if isinstance(val.get("username"), str) and isinstance(val.get("password"), str):
            return val["username"], val["password"]
    return None


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) for m in re.finditer(r'([A-Za-z_]+)="([^"]*)"', rest)}
    return scheme.lower(), params


# --------------------------------------------------------------------------- transport


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    raw: http.client.HTTPResponse
    conn: http.client.HTTPConnection
    url: str

    def close(self) -> None:
        self.raw.close()
        self.conn.close()


@dataclass
class Transport:
    """One registry host. ``plain_http`` only for loopback hosts."""

    host: str
    plain_http: bool = False
    timeout: float = DEFAULT_TIMEOUT_S
    auth: tuple[str, str] | None = None
    until: float | None = None  # a deadline for a whole phase (monotonic clock), e.g. pull's metadata
    _token: dict[str, str] = field(default_factory=dict, repr=False)
    _basic: bool = False

    def __post_init__(self) -> None:
        if self.plain_http and not is_loopback(self.host):
            raise UsageError(f"plain http is allowed only for a loopback host, not {self.host}", hint="plain_http")
        if self.auth is None:
            self.auth = credentials_for(self.host)

    # ----------------------------------------------------------------- low level

    def _base(self) -> str:
        return f"{'http' if self.plain_http else 'https'}://{self.host}"

    def _connect(self, url: str) -> tuple[http.client.HTTPConnection, str]:
        parts = urllib.parse.urlsplit(url)
        if not parts.hostname:
            raise TransportError(f"{url!r}: no host")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if parts.scheme == "https":
            ctx = ssl.create_default_context()
            return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self.timeout, context=ctx,
                                               blocksize=CHUNK), target
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout, blocksize=CHUNK), target

    def _origin(self, url: str) -> tuple[str, str]:
        p = urllib.parse.urlsplit(url)
        return p.scheme, p.netloc.lower()

    def _auth_header(self, scope: str) -> str | None:
        if scope in self._token:
            return f"Bearer {self._token[scope]}"
        if self._basic and self.auth is not None:
            return "Basic " + base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return None

    def request(
        self, method: str, path_or_url: str, *, scope: str, headers: Mapping[str, str] | None = None,
        body: bytes | IO[bytes] | None = None, length: int | None = None, follow: bool = True,
    ) -> Response:
        """Send one request (with the auth flow and safe redirects); the caller reads and closes the response."""
        url = path_or_url if "://" in path_or_url else self._base() + path_or_url
        resp = self._send(method, url, scope=scope, headers=headers, body=body, length=length, follow=follow)
        if resp.status != 401:
            return resp
        challenge = resp.headers.get("www-authenticate", "")
        _finish(resp, "401 answer")
        self._answer_challenge(challenge, scope)
        if hasattr(body, "seek"):
            body.seek(0)  # type: ignore[union-attr]
        return self._send(method, url, scope=scope, headers=headers, body=body, length=length, follow=follow)

    def _answer_challenge(self, challenge: str, scope: str) -> None:
        kind, params = _parse_challenge(challenge)
        if kind == "basic":
            if self.auth is None:
                raise TransportError(f"{self.host} asks for credentials and the Docker config has none for it")
            self._basic = True
            return
        if kind != "bearer" or "realm" not in params:
            raise TransportError(f"{self.host}: unsupported authentication challenge {challenge[:80]!r}")
        realm = params["realm"]
        rp = urllib.parse.urlsplit(realm)
        if not (rp.scheme == "https" or (rp.scheme == "http" and self.plain_http and is_loopback(rp.netloc))):
            raise TransportError(f"{self.host}: refusing token realm {realm!r} (https only)")
        query = {k: v for k, v in (("service", params.get("service")), ("scope", params.get("scope") or scope)) if v}
        sep = "&" if rp.query else "?"
        token_url = realm + (sep + urllib.parse.urlencode(query) if query else "")
        hdrs = {}
        if self.auth is not None:
            hdrs["Authorization"] = "Basic " + base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        resp = self._send("GET", token_url, scope="", headers=hdrs, body=None, length=None, follow=True, auth=False)
        try:
            data = read_capped(resp, 256 * 1024, what="token answer")
            if resp.status != 200:
                raise TransportError(f"{self.host}: the token service answered {resp.status}")
        finally:
            resp.close()
        from registry._internal.jsonio import loads_json

        doc = loads_json(data, f"{self.host} token answer")
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise TransportError(f"{self.host}: the token service gave no token")
        self._token[scope] = token

    def _send(
        self, method: str, url: str, *, scope: str, headers: Mapping[str, str] | None, body: bytes | IO[bytes] | None,
        length: int | None, follow: bool, auth: bool = True,
    ) -> Response:
        origin = self._origin(url)
        for _hop in range(MAX_REDIRECTS + 1):
            conn, target = self._connect(url)
            hdrs = {"User-Agent": "tinyreg", **(headers or {})}
            if self._origin(url) != origin:  # credentials never follow a redirect to another host (object storage)
                hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
            if auth and self._origin(url) == origin:
                a = self._auth_header(scope)
                if a:
                    hdrs["Authorization"] = a
            if length is not None:
                hdrs["Content-Length"] = str(length)
            try:
                conn.request(method, target, body=body, headers=hdrs)
                raw = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise TransportError(f"{method} {url}: {exc.__class__.__name__}: {exc}") from exc
            resp = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw, conn, url)
            if follow and raw.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                location = resp.headers.get("location", "")
                resp.close()
                nxt = urllib.parse.urljoin(url, location)
                if urllib.parse.urlsplit(nxt).scheme != "https":
                    raise TransportError(f"{url}: refusing a redirect to {nxt[:120]!r} (redirects are followed to https only)")
                url = nxt
                continue
            return resp
        raise TransportError(f"{url}: more than {MAX_REDIRECTS} redirects")

    # ----------------------------------------------------------------- registry calls

    def scope(self, repo: str, push: bool = False) -> str:
        return f"repository:{repo}:{'pull,push' if push else 'pull'}"

    def ping(self) -> None:
        resp = self.request("GET", "/v2/", scope="")
        _finish(resp, "/v2/")
        if resp.status not in (200, 401):
            raise TransportError(f"{self.host} is not an OCI registry (GET /v2/ answered {resp.status})")

    def get_document(self, repo: str, path: str, accept: str, cap: int = MAX_DOCUMENT, *, push: bool = False) -> tuple[int, bytes, str]:
        """(status, body, content type) of a small document; 404 gives (404, b"", "")."""
        resp = self.request("GET", f"/v2/{repo}/{path}", scope=self.scope(repo, push), headers={"Accept": accept})
        try:
            if resp.status == 404:
                return 404, b"", ""
            data = read_capped(resp, cap, what=f"{self.host}/{repo}/{path}", deadline=self.deadline(cap))
        finally:
            resp.close()
        if resp.status != 200:
            raise TransportError(f"GET {self.host}/v2/{repo}/{path} answered {resp.status}")
        return resp.status, data, resp.headers.get("content-type", "")

    def deadline(self, size: int) -> float:
        """When a body of ``size`` bytes must have arrived (never later than ``until``, when set)."""
        own = time.monotonic() + self.timeout + size / MIN_RATE
        return own if self.until is None else min(own, self.until)

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=self.scope(repo, True))
        resp.close()
        if resp.status in (200, 404):
            return resp.status == 200
        raise TransportError(f"HEAD blob {digest[:19]} on {self.host}/{repo} answered {resp.status}")

    def upload_blob(self, repo: str, digest: str, size: int, data: bytes | IO[bytes]) -> None:
        """Monolithic upload (POST then PUT with the whole body, streamed from a file or bytes)."""
        scope = self.scope(repo, True)
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, length=0, body=b"")
        _finish(resp, "upload start")
        if resp.status not in (201, 202):
            raise TransportError(f"{self.host}/{repo}: starting a blob upload answered {resp.status}")
        location = resp.headers.get("location")
        if not location:
            raise TransportError(f"{self.host}/{repo}: the upload answer has no Location")
        url = urllib.parse.urljoin(self._base() + "/", location)
        if self._origin(url) != self._origin(self._base()):
            raise TransportError(f"{self.host}: refusing an upload location on another host ({url[:80]!r})")
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        resp = self.request("PUT", url, scope=scope, body=data, length=size,
                            headers={"Content-Type": "application/octet-stream"}, follow=False)
        _finish(resp, "upload end")
        if resp.status != 201:
            raise TransportError(f"{self.host}/{repo}: uploading blob {digest[:19]} answered {resp.status}")

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> Mapping[str, str]:
        resp = self.request("PUT", f"/v2/{repo}/manifests/{reference}", scope=self.scope(repo, True), body=data,
                            length=len(data), headers={"Content-Type": media_type}, follow=False)
        body = _finish(resp, "manifest upload")
        if resp.status != 201:
            raise TransportError(f"{self.host}/{repo}: PUT manifest {reference} answered {resp.status}: "
                                 f"{body[:200].decode('utf-8', 'replace')}")
        return resp.headers

    def open_blob(self, repo: str, digest: str, offset: int = 0) -> Response:
        hdrs = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=self.scope(repo), headers=hdrs)
        if resp.status not in (200, 206):
            resp.close()
            raise TransportError(f"GET blob {digest[:19]} on {self.host}/{repo} answered {resp.status}")
        return resp


def iter_body(resp: Response, *, deadline: float, what: str) -> Iterator[bytes]:
    """Chunks of a response body as they arrive; TransportError past ``deadline``."""
    while True:
        if time.monotonic() > deadline:
            raise TransportError(f"{what}: too slow (the deadline for its size passed); discarded")
        try:
            chunk = resp.raw.read1(CHUNK)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{what}: the transfer broke off ({exc.__class__.__name__})") from exc
        if not chunk:
            return
        yield chunk


def _finish(resp: Response, what: str) -> bytes:
    """The (first 64 KiB of the) body of an answer read for its status and headers; the response is closed."""
    try:
        return read_capped(resp, 64 * 1024, what=what, allow_over=True)
    finally:
        resp.close()


def read_capped(resp: Response, cap: int, *, what: str, deadline: float | None = None, allow_over: bool = False) -> bytes:
    """The whole body, at most ``cap`` bytes (more: TransportError, or truncated when ``allow_over``)."""
    length = resp.headers.get("content-length")
    if length and length.isdigit() and int(length) > cap and not allow_over:
        raise TransportError(f"{what}: {length} bytes announced, over the cap of {cap} bytes")
    out = bytearray()
    for chunk in iter_body(resp, deadline=deadline or time.monotonic() + DEFAULT_TIMEOUT_S + cap / MIN_RATE, what=what):
        out += chunk
        if len(out) > cap:
            if allow_over:
                return bytes(out[:cap])
            raise TransportError(f"{what}: body runs past the cap of {cap} bytes; refused")
    return bytes(out)


def dumps(doc: Any) -> bytes:
    """Canonical bytes of a document tinyreg writes (stable digests: pushing twice is a no-op)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
