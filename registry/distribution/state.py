"""Rollback and freeze state of registries assembled by ``pull``, and the rule that lets them verify.

A folder filled by ``pull`` has no folder snapshot (``registry.sigstore.json``): the
maintainer's snapshot signs the maintainer's folder, not the consumer's. Instead, each
verified pull records, in the consumer's state dir (``$TINYREG_STATE_DIR/pulled.json``,
beside the snapshot state, outside any registry), per destination folder and entry:
the maintainer's signed snapshot version and expiry the entry was released under, and
the sha256 of the entry's bundle. The rule (docs/distribution.md):

* a folder **with** ``registry.sigstore.json`` is checked as before (the folder snapshot);
* a folder **without** one, for which this state records pulls, passes the snapshot
  check entry by entry: every entry has a pull record, its bundle on disk is the one
  recorded (an older signed release put in its place is a rollback), and the recorded
  snapshot has not expired (freeze). Each entry's own bundle is then verified under the
  consumer's policy as for any registry;
* a folder without either fails closed, as before.

A pull refuses an entry whose snapshot version is lower than the one recorded for that
folder and entry (an older signed entry never replaces a newer one).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from registry.errors import InputError, SignatureError

STATE_NAME = "pulled.json"
STATE_FORMAT = 1


def _path() -> Path:
    from registry.signing.snapshot import state_dir

    return state_dir() / STATE_NAME


def _read(path: Path) -> dict[str, Any]:
    from registry.signing.snapshot import read_state

    return read_state(path, "tinyreg pull state")


def records(root: Path) -> dict[str, dict[str, Any]]:
    """entry id -> pull record for the registry folder ``root`` (empty: nothing pulled there)."""
    from registry.signing.snapshot import registry_key

    reg = _read(_path())["registries"].get(registry_key(root))
    entries = reg.get("entries") if isinstance(reg, dict) else None
    return {k: v for k, v in entries.items() if isinstance(v, dict)} if isinstance(entries, dict) else {}


def record(root: Path, entry_id: str, rec: Mapping[str, Any]) -> None:
    """Remember the pull of ``entry_id`` into ``root`` (atomically, under a lock)."""
    from registry._internal.atomic import file_lock, write_atomic
    from registry.signing.snapshot import registry_key, require_state_dir

    d = require_state_dir()
    path = d / STATE_NAME
    try:
        with file_lock(path):
            doc = _read(path)
            reg = doc["registries"].setdefault(registry_key(root), {"entries": {}})
            reg.setdefault("entries", {})[entry_id] = dict(rec)
            write_atomic(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    except OSError as exc:
        raise InputError(f"state dir {d}: cannot write ({exc.strerror}); set TINYREG_STATE_DIR") from exc


def check_rollback(root: Path, entry_id: str, version: int) -> None:
    rec = records(root).get(entry_id)
    seen = rec.get("snapshot_version") if rec else None
    if isinstance(seen, int) and version < seen:
        raise SignatureError(f"entry '{entry_id}' was released under snapshot version {version}, older than version {seen} "
                             "already pulled into this registry (rollback); nothing written")


def is_pulled_folder(root: Path) -> bool:
    """True when ``root`` has no folder snapshot and this state records pulls into it."""
    import os

    from registry.store.layout import SNAPSHOT_NAME

    return not os.path.lexists(root / SNAPSHOT_NAME) and bool(records(root))


def check_pulled_entries(
    reg: Any, entries: Iterable[Mapping[str, Any]], *, known: Mapping[str, str] | None = None, now: datetime | None = None,
) -> None:
    """SignatureError unless every entry was pulled here, its bundle is the one recorded, and not expired."""
    from registry._internal.hashing import sha256_file
    from registry._internal.paths import confine
    from registry.errors import Error
    from registry.signing.snapshot import format_time, now_utc, parse_time

    recs = records(reg.root)
    problems = []
    for e in entries:
        eid = str(e.get("id"))
        rec = recs.get(eid)
        if rec is None:
            problems.append(f"'{eid}' was not pulled into this folder under a trust policy (no pull record; "
                            "the folder has no signed snapshot)")
            continue
        rel = e.get("sigstore_bundle")
        if not isinstance(rel, str):
            problems.append(f"'{eid}' is not signed")
            continue
        try:
            sha = (known or {}).get(rel) or sha256_file(confine(reg.root, rel, what="sigstore_bundle")).sha256
        except Error as exc:
            problems.append(f"'{eid}': {exc.diagnostics()}")
            continue
        if sha != rec.get("bundle_sha256"):
            problems.append(f"'{eid}': its bundle is not the one pulled (snapshot version {rec.get('snapshot_version')}); "
                            "an older or other signed release was put in its place (rollback?)")
            continue
        try:
            expires = parse_time(rec.get("expires"), "pull record expiry")
        except InputError:
            problems.append(f"'{eid}': damaged pull record")
            continue
        if (now or now_utc()) > expires:
            problems.append(f"'{eid}': snapshot version {rec.get('snapshot_version')} it was pulled under expired on "
                            f"{format_time(expires)} (a frozen release; pull a fresh one)")
    if problems:
        raise SignatureError("; ".join(problems))
