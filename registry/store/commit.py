"""Whole-folder updates: stage every file, journal, commit, roll forward after a crash.

A transaction's files never touch the registry folder while its body runs. On commit
they are written under ``.tinyreg-update/`` (each fsynced), with the new ``registry.json``
and a journal; the journal's atomic appearance is the point of no return. The journal
is then applied: new files renamed into place, ``registry.json`` replaced last, files
nothing refers to any more removed, the staging folder removed. A writer killed at any
point leaves either no journal (the update never happened: its remains are discarded)
or a complete one (the update is rolled forward). Whoever takes the registry lock next,
reader or writer, completes or discards it before reading, so nobody reads a folder
that is half old and half new.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from registry._internal.atomic import folder_lock, fsync_dir, relock
from registry._internal.hashing import sha256_bytes
from registry._internal.jsonio import loads_json
from registry._internal.paths import confine
from registry.errors import InputError, IntegrityError, UsageError
from registry.store.layout import REGISTRY_NAME, STAGING_DIR

JOURNAL = "journal.json"
_STAGED_NAME = re.compile(r"[0-9]{1,9}")
# What a writer may land: the schema's relative-path rule (no hidden component: never `.git/...`).
_LANDABLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*")
_NEW_REGISTRY = "registry.json.new"


@dataclass(frozen=True)
class Recovery:
    """What the lock holder found left by an interrupted writer, and did about it."""

    committed: bool  # True: rolled forward to the new registry; False: discarded (the old one stands)
    files: tuple[str, ...]

    def describe(self) -> str:
        if self.committed:
            return (f"completed an update that was interrupted after it committed ({len(self.files)} files: "
                    f"{', '.join(self.files[:5])}{', ...' if len(self.files) > 5 else ''})")
        return "discarded the remains of an update that was interrupted before it committed (the registry was unchanged)"


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(folder: Path) -> None:
    """Remove the staging folder (no symlink is followed)."""
    for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            if not os.path.islink(os.path.join(dirpath, name)):
                os.rmdir(os.path.join(dirpath, name))
    os.rmdir(folder)


def _landable(root: Path, rel: str, removal: bool) -> None:
    """Refuse, before anything is written, a path the update could not land (a folder in the way)."""
    if not _LANDABLE.fullmatch(rel):
        raise UsageError(f"{rel!r}: not a path a registry update writes (hidden or unusual name); nothing written")
    target = confine(root, rel, what="staged file")
    here = root
    for part in Path(rel).parts[:-1]:
        here = here / part
        if os.path.lexists(here) and not here.is_dir():
            raise UsageError(f"{rel}: {here.relative_to(root)} is a file, not a folder; nothing written")
    if not removal and target.is_dir() and not target.is_symlink():
        raise UsageError(f"{rel}: a folder is in the way; nothing written")
    if removal and target.is_dir() and not target.is_symlink():
        raise UsageError(f"{rel}: is a folder, not a file of the registry; nothing written")


def _copy_synced(src: Path, dest: Path, sha256: str, size: int) -> None:
    """Stream ``src`` into a new ``dest`` (1 MiB at a time, hashed on the way); IntegrityError unless it is the pinned file."""
    import hashlib
    import stat

    h = hashlib.sha256()
    got = 0
    fin = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fin).st_mode):
            raise IntegrityError(f"{src}: a staged source is not a regular file")
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            while got <= size:
                chunk = os.read(fin, 1 << 20)
                if not chunk:
                    break
                got += len(chunk)
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        os.close(fin)
    if got != size or h.hexdigest() != sha256:
        raise IntegrityError(f"{src.name}: changed after it was checked (sha256 {h.hexdigest()[:16]}..., {got} bytes); nothing written")


def commit(
    root: Path, files: Mapping[str, bytes | None], registry_bytes: bytes,
    sources: Mapping[str, tuple[Path, str, int]] | None = None,
) -> None:
    """Land ``files`` (relative path -> bytes, or None to remove) and the new registry as one update.

    ``sources`` (relative path -> (file on disk, sha256, size)) are streamed in rather than held
    in memory, and must still hash to their pin. The caller holds the exclusive lock of ``root``.
    """
    sources = {k: v for k, v in (sources or {}).items() if k not in files}
    for rel, data in sorted(files.items()):
        _landable(root, rel, data is None)
    for rel in sorted(sources):
        _landable(root, rel, False)
    stage = root / STAGING_DIR
    if os.path.lexists(stage):
        recover(root)
    os.mkdir(stage, 0o755)
    items: list[dict[str, object]] = []
    for i, (rel, data) in enumerate(sorted(files.items())):
        confine(root, rel, what="staged file")
        if data is None:
            items.append({"path": rel, "remove": True})
            continue
        _write_synced(stage / str(i), data)
        items.append({"path": rel, "staged": str(i), "sha256": sha256_bytes(data).sha256})
    for j, (rel, (src, sha, size)) in enumerate(sorted(sources.items()), start=len(files)):
        confine(root, rel, what="staged file")
        try:
            _copy_synced(src, stage / str(j), sha, size)
        except BaseException:
            _remove_tree(stage)  # no journal yet: the update never happened
            raise
        items.append({"path": rel, "staged": str(j), "sha256": sha})
    _write_synced(stage / _NEW_REGISTRY, registry_bytes)
    journal = {"tinyreg_update": 1, "files": items, "registry_sha256": sha256_bytes(registry_bytes).sha256}
    _write_synced(stage / (JOURNAL + ".part"), json.dumps(journal, sort_keys=True).encode("utf-8"))
    os.replace(stage / (JOURNAL + ".part"), stage / JOURNAL)
    fsync_dir(stage)  # the point of no return: from here on the update is rolled forward
    _apply(root, stage, journal)


def _apply(root: Path, stage: Path, journal: Mapping[str, object]) -> None:
    items = journal.get("files")
    if not isinstance(items, list):
        raise IntegrityError(f"{stage / JOURNAL}: not a tinyreg update journal")
    touched: set[Path] = set()
    removals: list[Path] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise IntegrityError(f"{stage / JOURNAL}: not a tinyreg update journal")
        if not _LANDABLE.fullmatch(item["path"]):  # e.g. `.git/hooks/pre-commit` where the registry is a repo root
            raise IntegrityError(f"{stage / JOURNAL}: path {item['path']!r} is not one tinyreg writes; "
                                 "remove the staging folder by hand after a look")
        target = confine(root, item["path"], what="journal path")
        if item.get("remove") is True:
            removals.append(target)
            continue
        staged = item.get("staged")
        # a journal is data in a folder anyone may edit: a staged name is one of the index names
        # commit() writes, never a path that could move a file from elsewhere into the registry
        if not isinstance(staged, str) or not _STAGED_NAME.fullmatch(staged):
            raise IntegrityError(f"{stage / JOURNAL}: staged name {staged!r} is not one tinyreg writes; "
                                 "remove the staging folder by hand after a look")
        src = stage / staged
        if src.is_symlink():
            raise IntegrityError(f"{src}: a staged file is a symlink; remove the staging folder by hand after a look")
        if os.path.lexists(src):  # absent: already moved before the interruption
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, target)
            touched.add(target.parent)
    for folder in sorted(touched):
        fsync_dir(folder)
    new_reg = stage / _NEW_REGISTRY
    if new_reg.is_symlink():
        raise IntegrityError(f"{new_reg}: is a symlink; remove the staging folder by hand after a look")
    if os.path.lexists(new_reg):
        os.replace(new_reg, root / REGISTRY_NAME)  # the registry last: it names what is now there
        fsync_dir(root)
    for target in removals:  # then what nothing refers to any more (what cannot go stays: verify lists it)
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            os.unlink(target)
        _prune_empty(root, target.parent)
    os.unlink(stage / JOURNAL)
    _remove_tree(stage)
    fsync_dir(root)


def _prune_empty(root: Path, folder: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = folder.parent


def pending(root: Path) -> bool:
    return os.path.lexists(root / STAGING_DIR)


def recover(root: Path) -> Recovery | None:
    """Roll a committed update forward, or discard an uncommitted one; None when there is none.

    The caller holds the exclusive lock of ``root``.
    """
    stage = root / STAGING_DIR
    if not os.path.lexists(stage):
        return None
    if stage.is_symlink() or not stage.is_dir():
        raise IntegrityError(f"{stage}: not a staging folder tinyreg made; remove it by hand after a look")
    journal_path = stage / JOURNAL
    if not journal_path.exists():
        _remove_tree(stage)
        fsync_dir(root)
        return Recovery(False, ())
    try:
        journal = loads_json(journal_path.read_bytes(), str(journal_path))
    except (OSError, InputError) as exc:
        raise IntegrityError(f"{journal_path}: unreadable update journal ({exc})") from exc
    if not isinstance(journal, dict):
        raise IntegrityError(f"{journal_path}: not a tinyreg update journal")
    items = journal.get("files") if isinstance(journal.get("files"), list) else []
    files = tuple(str(i.get("path")) for i in items if isinstance(i, dict))  # type: ignore[union-attr]
    _apply(root, stage, journal)
    return Recovery(True, files)


@contextlib.contextmanager
def locked(root: Path, *, exclusive: bool) -> Iterator[Recovery | None]:
    """The registry lock, for readers and writers, with any interrupted update completed first.

    Yields what was recovered (None almost always). A reader that finds an interrupted
    update and cannot complete it (a read-only folder) gets IntegrityError rather than
    a folder that is half old and half new.
    """
    with folder_lock(root, exclusive=exclusive) as fd:
        found: Recovery | None = None
        if pending(root):
            if not exclusive:
                relock(fd, exclusive=True)
            try:
                found = recover(root)
            except OSError as exc:
                if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise IntegrityError(
                        f"{root}: an update was interrupted ({root / STAGING_DIR} is there) and this process cannot "
                        f"complete it ({exc.strerror}); any tinyreg writer with write access to the folder completes it"
                    ) from exc
                raise
            if not exclusive:
                relock(fd, exclusive=False)
        yield found
