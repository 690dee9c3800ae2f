"""The signed snapshot of a whole registry folder, its version and expiry, and the consumer's last-seen state.

``registry.sigstore.json`` (beside ``registry.json``) is an OpenSSF Model Signing
v1.0 signature over every file of the folder, ``registry.json`` included, so
``model_signing verify key --signature model/tiny/registry.sigstore.json
--public_key PUB.pem model/tiny`` accepts it as is. ``registry.json`` carries
``snapshot: {version, expires}``; because ``registry.json`` is covered, both are
signed. With a trust policy, a snapshot past its expiry (freeze) or with a lower
version than the highest one seen for that registry (rollback, mix-and-match) is
refused. The last-seen versions live in ``$TINYREG_STATE_DIR/snapshots.json``
(default ``$XDG_STATE_HOME/tinyreg``, else ``~/.local/state/tinyreg``); a missing
state dir means first use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from registry._internal.jsonio import loads_json
from registry._internal.safeio import read_raw
from registry.errors import InputError, SignatureError
from registry.signing._methods import INTOTO_PAYLOAD_TYPE
from registry.signing._methods import model_signing_v1 as oms
from registry.signing.policy import TrustPolicy
from registry.store.layout import REGISTRY_NAME, SNAPSHOT_NAME

DEFAULT_EXPIRES_DAYS = 365
STATE_NAME = "snapshots.json"
STATE_FORMAT = 1


def now_utc() -> datetime:
    return datetime.now(UTC)


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(text: Any, what: str) -> datetime:
    if not isinstance(text, str):
        raise InputError(f"{what} must be an ISO 8601 UTC time")
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{what} {text!r} is not an ISO 8601 time") from exc
    if t.tzinfo is None:
        raise InputError(f"{what} {text!r} has no time zone")
    return t


def snapshot_field(doc: Mapping[str, Any], source: str) -> tuple[int, datetime] | None:
    """(version, expires) of ``registry.json``'s ``snapshot``; None when absent; InputError when malformed."""
    snap = doc.get("snapshot")
    if snap is None:
        return None
    if not isinstance(snap, dict):
        raise InputError(f"{source}: snapshot must be an object with version and expires")
    version = snap.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(f"{source}: snapshot has no version (a positive integer)")
    return version, parse_time(snap.get("expires"), f"{source}: snapshot.expires")


MAX_EXPIRES_DAYS = 3660  # a snapshot that never expires defeats the freeze protection; datetime ends in 9999


def next_snapshot(doc: Mapping[str, Any], expires_in_days: int, now: datetime | None = None) -> dict[str, Any]:
    if not isinstance(expires_in_days, int) or isinstance(expires_in_days, bool) or not 1 <= expires_in_days <= MAX_EXPIRES_DAYS:
        from registry.errors import UsageError

        raise UsageError(f"a snapshot must be valid for 1 to {MAX_EXPIRES_DAYS} days (10 years), not {expires_in_days!r}",
                         hint="expires_in")
    current = snapshot_field(doc, REGISTRY_NAME)
    version = (current[0] if current else 0) + 1
    return {"version": version, "expires": format_time((now or now_utc()) + timedelta(days=expires_in_days))}


def sign_snapshot(root: Path, final_registry: bytes, staged: Mapping[str, bytes | None], sign: Callable[[bytes], bytes]) -> bytes:
    """Bundle bytes signing the folder as it will be once ``staged`` and ``final_registry`` land."""
    overlay = {**staged, REGISTRY_NAME: final_registry}
    overlay.pop(SNAPSHOT_NAME, None)
    manifest = oms.manifest_of_folder(root, [SNAPSHOT_NAME], overlay=overlay)
    statement = oms.build_statement(root.name or root.resolve().name, manifest, oms.recorded_ignores([SNAPSHOT_NAME]))
    return sign(statement)


def verify_snapshot(
    root: Path, policy: TrustPolicy, *, doc: Mapping[str, Any], known: Mapping[str, str] | None = None,
    now: datetime | None = None, only: Mapping[str, str] | None = None, bundle: bytes | None = None,
) -> int:
    """The snapshot version, after checking signature, files and expiry; SignatureError otherwise.

    ``bundle``: the snapshot bytes the caller already holds (verified as given, ``root`` not read for it).

    Every file of the folder must match the signed manifest exactly; with ``only`` (name ->
    sha256 of the bytes a reader uses, registry.json included), just those must be in it
    with those digests: what ``load`` needs, without hashing every other model of the folder.
    """
    try:
        if bundle is None:
            bundle = read_raw(root / SNAPSHOT_NAME, "bundle")
    except FileNotFoundError as exc:
        raise SignatureError(f"{SNAPSHOT_NAME} is missing: the registry carries no signed snapshot ('tinyreg sign' writes it)") from exc
    except OSError as exc:
        raise SignatureError(f"{SNAPSHOT_NAME}: cannot read ({exc.strerror})") from exc
    ptype, payload = policy.verify_dsse(bundle, SNAPSHOT_NAME)
    if ptype != INTOTO_PAYLOAD_TYPE:
        raise SignatureError(f"{SNAPSHOT_NAME}: payload type {ptype!r} is not an in-toto statement")
    _name, expected, ignores = oms.manifest_from_statement(payload)
    allowed = set(oms.recorded_ignores([SNAPSHOT_NAME]))
    if not set(ignores) <= allowed:
        raise SignatureError(f"{SNAPSHOT_NAME} leaves files unsigned (ignore_paths {', '.join(sorted(set(ignores) - allowed))})")
    if only is not None:
        signed = dict(expected)
        uncovered = sorted(n for n in only if n not in signed)
        changed = sorted(n for n, sha in only.items() if n in signed and signed[n] != sha)
        if uncovered or changed:
            raise oms.ManifestMismatch(missing=[], extra=uncovered, changed=changed)
    else:
        try:
            actual = oms.manifest_of_folder(root, [SNAPSHOT_NAME], known=known)
        except oms.UnsignableFolder as exc:
            raise SignatureError(exc.diagnostics()) from exc
        oms.compare(expected, actual)
    field = snapshot_field(doc, REGISTRY_NAME)
    if field is None:
        raise InputError(f"{REGISTRY_NAME}: the signed registry has no snapshot version")
    version, expires = field
    if (now or now_utc()) > expires:
        raise SignatureError(f"snapshot version {version} expired on {format_time(expires)} (a frozen registry; ask for a fresh signature)")
    return version


# --------------------------------------------------------------------------- last-seen state


def state_dir() -> Path:
    env = os.environ.get("TINYREG_STATE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "tinyreg"


def registry_key(root: Path) -> str:
    return str(root.resolve())


def read_state(path: Path, what: str = "tinyreg state") -> dict[str, Any]:
    """A state document (``{"format": 1, "registries": {...}}``) under the state folder; missing: empty.

    Read through the safe reader (a regular file, size-capped), parsed by the strict JSON reader;
    anything else is bad input naming ``what``.
    """
    try:
        data = read_raw(path, "document")
    except FileNotFoundError:
        return {"format": STATE_FORMAT, "registries": {}}
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    try:
        doc = loads_json(data, str(path))
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT or not isinstance(doc.get("registries"), dict):
            raise ValueError("layout")
    except (ValueError, InputError) as exc:
        raise InputError(f"{path}: not a {what} file (move it away to start afresh)") from exc
    return doc


def require_state_dir() -> Path:
    """The state dir, created if missing; InputError (exit 2) when it cannot be written."""
    d = state_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"state dir {d} cannot be created ({exc.strerror}); set TINYREG_STATE_DIR") from exc
    if not d.is_dir() or not os.access(d, os.W_OK | os.X_OK):
        raise InputError(f"state dir {d} is not a writable folder; set TINYREG_STATE_DIR")
    read_state(d / STATE_NAME)  # a damaged state file is bad input before anything runs
    return d


def last_seen(root: Path) -> int:
    entry = read_state(state_dir() / STATE_NAME)["registries"].get(registry_key(root))
    return int(entry["version"]) if isinstance(entry, dict) and isinstance(entry.get("version"), int) else 0


def record_seen(root: Path, version: int) -> None:
    """Remember ``version`` as the highest seen for this registry (atomically, under a lock)."""
    from registry._internal.atomic import file_lock, write_atomic

    d = require_state_dir()
    path = d / STATE_NAME
    try:
        with file_lock(path):
            doc = read_state(path)
            key = registry_key(root)
            old = doc["registries"].get(key)
            if isinstance(old, dict) and isinstance(old.get("version"), int) and old["version"] >= version:
                return
            doc["registries"][key] = {"version": version, "seen": format_time(now_utc())}
            write_atomic(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    except OSError as exc:
        raise InputError(f"state dir {d}: cannot write ({exc.strerror}); set TINYREG_STATE_DIR") from exc


def check_rollback(root: Path, version: int) -> None:
    seen = last_seen(root)
    if version < seen:
        raise SignatureError(f"snapshot version {version} is older than version {seen} already seen for this registry (rollback)")


def check_registry_snapshot(
    root: Path, policy: TrustPolicy, *, doc: Mapping[str, Any], known: Mapping[str, str] | None = None,
    now: datetime | None = None, record: bool = True, only: Mapping[str, str] | None = None,
) -> int:
    """Every snapshot check (signature, files, expiry, rollback); records the version when it passes."""
    version = verify_snapshot(root, policy, doc=doc, known=known, now=now, only=only)
    check_rollback(root, version)
    if record:
        record_seen(root, version)
    return version

