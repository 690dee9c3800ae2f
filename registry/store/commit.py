"""Whole-folder updates: stage every file, journal, commit; only a writer finishes what a writer left.

A transaction's files never touch the registry folder while its body runs. On commit
they are written under ``.tinyreg-update/`` (each fsynced), with the new ``registry.json``
and a journal; then a record of that journal is written OUTSIDE the folder (under the
state dir, ``$TINYREG_STATE_DIR``), and the journal's atomic appearance is the point of no
return. The journal is then applied: new files renamed into place, ``registry.json``
replaced last, files nothing refers to any more removed, the staging folder and the
record removed.

A journal is data in a folder anyone may edit (a pull request can commit one), so:

* **Readers never write.** ``load``, ``verify``, ``pin --check`` ... take the shared lock and,
  if ``.tinyreg-update/`` is there, change nothing: ``verify`` reports it (check ``journal``),
  ``load`` refuses (IntegrityError naming it and ``tinyreg recover``).
* **Only a writer repairs, and only a journal provably left by an interrupted local writer**:
  its record must be in this user's state dir (outside the folder), name this folder and the
  sha256 of the journal; the journal must name the sha256 of the ``registry.json`` it replaces
  (the pre-image: what is there now) and of every staged file, and each staged file must have
  it. Under a trust policy the post-image must verify before anything is renamed. Anything
  else is refused (``tinyreg recover --discard`` removes it), never applied. A staging folder
  without a journal never committed: a writer discards it (nothing of it had landed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._internal.atomic import folder_lock, fsync_dir
from registry._internal.hashing import hash_stream, sha256_bytes
from registry._internal.jsonio import loads_json
from registry._internal.paths import confine
from registry._internal.safeio import Refused, open_regular, read_raw, unreadable
from registry.errors import Error, InputError, IntegrityError, UsageError
from registry.store.layout import REGISTRY_NAME, STAGING_DIR

if TYPE_CHECKING:
    from registry.signing.policy import TrustPolicy

JOURNAL = "journal.json"
JOURNAL_VERSION = 2
RECORD_FORMAT = "tinyreg-update-record"
_STAGED_NAME = re.compile(r"[0-9]{1,9}")
# What a writer may land: the schema's relative-path rule (no hidden component: never `.git/...`).
_LANDABLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NEW_REGISTRY = "registry.json.new"
_DOC_CAP = 16 << 20  # a journal or record larger than this is not one tinyreg wrote
REPAIR = "tinyreg recover"  # the command that deals with a journal (a writer)


class PendingUpdate(IntegrityError):
    """A ``.tinyreg-update/`` is in the folder; a reader does not touch it."""


class UnboundJournal(IntegrityError):
    """A journal that cannot be shown to be this machine's interrupted writer's: never applied."""


@dataclass(frozen=True)
class Recovery:
    """What a writer found left by an interrupted writer, and did about it."""

    committed: bool  # True: rolled forward to the new registry; False: discarded (the old one stands)
    files: tuple[str, ...]
    reason: str = ""  # why it was discarded

    def describe(self) -> str:
        if self.committed:
            return (f"completed an update that was interrupted after it committed ({len(self.files)} files: "
                    f"{', '.join(self.files[:5])}{', ...' if len(self.files) > 5 else ''})")
        return f"discarded {STAGING_DIR}/ ({self.reason or 'an update interrupted before it committed'}); the registry was unchanged"


def describe_pending(root: Path) -> str:
    """The line a reader reports for a staging folder it found (and did not touch)."""
    what = "an update journal" if os.path.lexists(root / STAGING_DIR / JOURNAL) else "the remains of an update"
    return (f"{root / STAGING_DIR}: {what} is in the registry folder (left by an interrupted writer, or planted); "
            f"readers never apply it and the registry stands as registry.json says; '{REPAIR}' completes it if this "
            f"machine's writer left it, '{REPAIR} --discard' removes it")


# ---------------------------------------------------------------- state kept outside the folder


def _state_dir() -> Path:
    env = os.environ.get("TINYREG_STATE_DIR")
    if env is not None:
        if not env.strip():
            raise InputError("TINYREG_STATE_DIR is set but empty; unset it or name a folder")
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "tinyreg"


def record_path(root: Path) -> Path:
    """Where the record of ``root``'s update journal lives: this user's state dir, never inside the folder."""
    key = hashlib.sha256(str(root.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return _state_dir() / "updates" / f"{key}.json"


def _outside(root: Path, path: Path) -> bool:
    r, p = root.resolve(), path.resolve()
    return r != p and r not in p.parents


def _work_tree(root: Path) -> Path | None:
    """The top of the git work tree holding ``root`` (a folder with ``.git`` at or above it), if any."""
    here = root.resolve()
    for folder in (here, *here.parents):
        if os.path.lexists(folder / ".git"):
            return folder
    return None


def _state_dir_problem(root: Path, folder: Path) -> str | None:
    """Why the state dir ``folder`` cannot vouch for a journal in ``root``: it must lie outside everything a pull
    request can write, the registry folder and the git work tree holding it (a record committed next to the
    journal would otherwise match it)."""
    if not _outside(root, folder):
        return f"the state dir {folder} lies inside the registry folder {root}"
    top = _work_tree(root)
    if top is not None and not _outside(top, folder):
        return f"the state dir {folder} lies inside the git work tree {top} that holds the registry folder"
    return None


def _writable_record_dir(root: Path) -> Path:
    folder = record_path(root).parent
    problem = _state_dir_problem(root, folder)
    if problem is not None:
        raise UsageError(f"{problem}; set TINYREG_STATE_DIR elsewhere")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise InputError(f"state dir {folder} cannot be created ({exc.strerror}); set TINYREG_STATE_DIR") from exc
    return folder


def _read_capped(path: Path, what: str) -> bytes:
    """A regular file's bytes (no symlink, no FIFO, at most _DOC_CAP, also while it grows); UnboundJournal otherwise."""
    try:
        return read_raw(path, _DOC_CAP, nofollow=True)
    except OSError as exc:
        raise UnboundJournal(str(unreadable(f"{path}: {what}", exc))) from exc


def _file_sha256(path: Path, what: str) -> str:
    try:
        with open_regular(path, nofollow=True) as (fh, _):
            return hash_stream(fh.read).sha256
    except Refused as exc:
        raise UnboundJournal(f"{path}: {what} is not a regular file") from exc
    except OSError as exc:
        raise UnboundJournal(f"{path}: {what} is unreadable ({exc.strerror})") from exc


def _registry_sha256(root: Path) -> str | None:
    reg = root / REGISTRY_NAME
    if not os.path.lexists(reg):
        return None
    return _file_sha256(reg, REGISTRY_NAME)


def _drop_record(root: Path) -> None:
    with contextlib.suppress(FileNotFoundError, Error):
        os.unlink(record_path(root))


def _write_record(root: Path, journal_bytes: bytes, pre: str | None) -> None:
    from registry._internal.atomic import write_atomic

    folder = _writable_record_dir(root)
    record = {"format": RECORD_FORMAT, "version": 1, "root": str(root.resolve()), "pre_registry_sha256": pre,
              "journal_sha256": sha256_bytes(journal_bytes).sha256}
    try:
        write_atomic(folder / record_path(root).name, json.dumps(record, sort_keys=True).encode(), mode=0o600)
    except OSError as exc:
        raise InputError(f"state dir {folder}: cannot write ({exc.strerror}); set TINYREG_STATE_DIR") from exc


# ---------------------------------------------------------------- writing an update


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(folder: Path) -> None:
    """Remove the staging folder (no symlink is followed; a symlink or file in its place is unlinked)."""
    if folder.is_symlink() or not folder.is_dir():
        os.unlink(folder)
        return
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
    h = hashlib.sha256()
    got = 0
    fin = os.open(src, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))  # a FIFO must not block the open
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
                _write_all(fd, chunk)
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
    in memory, and must still hash to their pin. The caller holds the exclusive lock of ``root``
    (``locked(root, exclusive=True)``, which has dealt with any earlier staging folder).
    """
    sources = {k: v for k, v in (sources or {}).items() if k not in files}
    for rel, data in sorted(files.items()):
        _landable(root, rel, data is None)
    for rel in sorted(sources):
        _landable(root, rel, False)
    stage = root / STAGING_DIR
    if os.path.lexists(stage):
        raise UnboundJournal(describe_pending(root))
    pre = _registry_sha256(root)
    _writable_record_dir(root)  # before anything is staged: a state dir that cannot hold the record is refused first
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
    journal = {"tinyreg_update": JOURNAL_VERSION, "nonce": secrets.token_hex(16), "files": items,
               "pre_registry_sha256": pre, "registry_sha256": sha256_bytes(registry_bytes).sha256}
    journal_bytes = json.dumps(journal, sort_keys=True).encode("utf-8")
    _write_synced(stage / (JOURNAL + ".part"), journal_bytes)
    _write_record(root, journal_bytes, pre)  # outside the folder, before the point of no return
    os.replace(stage / (JOURNAL + ".part"), stage / JOURNAL)
    fsync_dir(stage)  # the point of no return: from here on a writer rolls the update forward
    _apply(root, stage, journal)
    _drop_record(root)


def _apply(root: Path, stage: Path, journal: Mapping[str, Any]) -> None:
    """Land a journal already checked (by commit(), which wrote it, or by _bound_journal)."""
    touched: set[Path] = set()
    removals: list[Path] = []
    for item in journal["files"]:
        target = confine(root, item["path"], what="journal path")
        if item.get("remove") is True:
            removals.append(target)
            continue
        src = stage / item["staged"]
        if os.path.lexists(src):  # absent: already moved before the interruption
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, target)
            touched.add(target.parent)
    for folder in sorted(touched):
        fsync_dir(folder)
    new_reg = stage / _NEW_REGISTRY
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


# ---------------------------------------------------------------- what a writer may finish


def _bound_journal(root: Path, stage: Path) -> tuple[dict[str, Any], bool]:
    """(the journal, whether anything of it has landed) if it is provably this machine's interrupted
    writer's and its every byte is the one it names; UnboundJournal (with the reason) otherwise."""
    jpath = stage / JOURNAL
    jbytes = _read_capped(jpath, "the update journal")
    try:
        journal = loads_json(jbytes, str(jpath))
    except InputError as exc:
        raise UnboundJournal(f"{jpath}: not a journal tinyreg writes ({exc.diagnostics()})") from exc
    if not isinstance(journal, dict) or journal.get("tinyreg_update") != JOURNAL_VERSION:
        raise UnboundJournal(f"{jpath}: not a journal this tinyreg writes (no pre-image binding)")
    rpath = record_path(root)
    problem = _state_dir_problem(root, rpath.parent)
    if problem is not None:
        raise UnboundJournal(f"{jpath}: {problem}, so it cannot vouch for it")
    if not os.path.lexists(rpath):
        raise UnboundJournal(f"{jpath}: no writer of this user on this machine recorded it ({rpath} is absent)")
    st = os.lstat(rpath)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise UnboundJournal(f"{rpath}: the update record is not a private regular file of this user")
    try:
        record = loads_json(_read_capped(rpath, "the update record"), str(rpath))
    except InputError as exc:
        raise UnboundJournal(f"{rpath}: unreadable update record ({exc.diagnostics()})") from exc
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or record.get("root") != str(root.resolve()):
        raise UnboundJournal(f"{rpath}: the update record is not one for this registry folder")
    if record.get("journal_sha256") != sha256_bytes(jbytes).sha256:
        raise UnboundJournal(f"{jpath}: not the journal this machine's writer recorded (its sha256 differs)")
    pre, post = journal.get("pre_registry_sha256"), journal.get("registry_sha256")
    if record.get("pre_registry_sha256") != pre or not (pre is None or (isinstance(pre, str) and _HEX64.fullmatch(pre))):
        raise UnboundJournal(f"{jpath}: its pre-image is not the one recorded")
    if not isinstance(post, str) or not _HEX64.fullmatch(post):
        raise UnboundJournal(f"{jpath}: names no sha256 for the registry it lands")
    now = _registry_sha256(root)
    new_reg = stage / _NEW_REGISTRY
    landed = not os.path.lexists(new_reg)
    if not landed:
        if now != pre:
            raise UnboundJournal(f"{jpath}: replaces a registry.json (sha256 {str(pre)[:16]}...) that is not the one here "
                                 f"({str(now)[:16]}...)")
        if _file_sha256(new_reg, "the staged registry") != post:
            raise UnboundJournal(f"{new_reg}: not the registry the journal names")
    elif now != post:
        raise UnboundJournal(f"{jpath}: registry.json is neither the one it replaces nor the one it lands")
    items = journal.get("files")
    if not isinstance(items, list):
        raise UnboundJournal(f"{jpath}: not a tinyreg update journal")
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or item["path"] in seen:
            raise UnboundJournal(f"{jpath}: not a tinyreg update journal")
        rel = item["path"]
        seen.add(rel)
        if not _LANDABLE.fullmatch(rel):  # e.g. `.git/hooks/pre-commit` where the registry is a repo root
            raise UnboundJournal(f"{jpath}: path {rel!r} is not one tinyreg writes")
        target = confine(root, rel, what="journal path")
        if item.get("remove") is True:
            continue
        staged, want = item.get("staged"), item.get("sha256")
        # a staged name is one of the index names commit() writes, never a path that could move a file from elsewhere
        if not isinstance(staged, str) or not _STAGED_NAME.fullmatch(staged):
            raise UnboundJournal(f"{jpath}: staged name {staged!r} is not one tinyreg writes")
        if not isinstance(want, str) or not _HEX64.fullmatch(want):
            raise UnboundJournal(f"{jpath}: {rel} has no sha256")
        src = stage / staged
        if os.path.lexists(src):
            if _file_sha256(src, f"staged file for {rel}") != want:
                raise UnboundJournal(f"{src}: staged bytes for {rel} are not the ones the journal names")
        else:
            landed = True
            if not os.path.lexists(target) or _file_sha256(target, rel) != want:
                raise UnboundJournal(f"{jpath}: {rel} is neither staged nor landed with the sha256 it names")
    return journal, landed


def _only_plain(root: Path) -> Any:
    """copytree's ``ignore``: the staging folder, and anything but folders, regular files and symlinks (a FIFO would
    block the copy; verify reports what is missing from the copy as it would report the special file)."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        out = [STAGING_DIR] if Path(folder) == root else []
        for n in names:
            mode = os.lstat(os.path.join(folder, n)).st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                out.append(n)
        return out

    return ignore


def _verify_post_image(root: Path, stage: Path, journal: Mapping[str, Any], policy: TrustPolicy) -> None:
    """Build the folder the journal would leave in a temporary copy and verify it under ``policy``."""
    from registry._internal import hooks  # verify is an application over the store: bound by the package root

    with tempfile.TemporaryDirectory(prefix="tinyreg-post-image-") as tmp:
        copy = Path(tmp) / "registry"
        shutil.copytree(root, copy, symlinks=True, ignore=_only_plain(root))
        for item in journal["files"]:
            dst = copy / item["path"]
            if item.get("remove") is True:
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    os.unlink(dst)
                continue
            src = stage / item["staged"]
            dst.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dst)
            shutil.copyfile(src if os.path.lexists(src) else root / item["path"], dst, follow_symlinks=False)
        if os.path.lexists(stage / _NEW_REGISTRY):
            shutil.copyfile(stage / _NEW_REGISTRY, copy / REGISTRY_NAME, follow_symlinks=False)
        first = hooks.need(hooks.verify_folder, "verify_folder")(copy / REGISTRY_NAME, policy)
    if first is not None:
        raise UnboundJournal(f"{stage / JOURNAL}: the registry it would land does not verify under the trust policy "
                             f"({first}); nothing applied")


def recover(root: Path, *, policy: TrustPolicy | None = None, discard: bool = False) -> Recovery | None:
    """Finish what this machine's interrupted writer left, or discard what never committed; None when there is none.

    A journal that is not provably this machine's writer's (see the module docstring) is refused
    (UnboundJournal), or removed with ``discard``. ``discard`` on a journal that already landed
    part of its files is refused (removing it would leave a mix): run it without ``discard``.
    The caller holds the exclusive lock of ``root``.
    """
    stage = root / STAGING_DIR
    if not os.path.lexists(stage):
        _drop_record(root)  # a record whose update finished or never began
        return None
    if stage.is_symlink() or not stage.is_dir():
        if not discard:
            raise UnboundJournal(f"{stage}: not a staging folder tinyreg made; '{REPAIR} --discard' removes it after a look")
        _remove_tree(stage)
        return Recovery(False, (), "not a staging folder tinyreg made")
    if not os.path.lexists(stage / JOURNAL):
        _remove_tree(stage)
        fsync_dir(root)
        _drop_record(root)
        return Recovery(False, (), "no journal: the update never committed")
    try:
        journal, landed = _bound_journal(root, stage)
    except UnboundJournal as exc:
        if not discard:
            raise UnboundJournal(f"{exc.diagnostics()}; refusing to apply it ('{REPAIR} --discard' removes it after a look)") from exc
        _remove_tree(stage)
        fsync_dir(root)
        return Recovery(False, (), exc.diagnostics())
    if discard:
        if landed:
            raise UsageError(f"{stage}: the interrupted update already landed part of its files; discarding it would leave "
                             f"a mix of old and new: complete it instead ('{REPAIR}')")
        _remove_tree(stage)
        fsync_dir(root)
        _drop_record(root)
        return Recovery(False, (), "discarded on request before any of it landed")
    if policy is not None:
        _verify_post_image(root, stage, journal, policy)
    files = tuple(str(i["path"]) for i in journal["files"])
    _apply(root, stage, journal)
    _drop_record(root)
    return Recovery(True, files)


def _env_policy() -> TrustPolicy | None:
    from registry._internal import hooks  # the trust policy lives above the store: bound by the package root

    policy: TrustPolicy | None = hooks.need(hooks.resolve_trust, "resolve_trust")(None)  # only when a journal is found
    return policy


@contextlib.contextmanager
def locked(root: Path, *, exclusive: bool, policy: TrustPolicy | None = None) -> Iterator[Recovery | None]:
    """The registry lock. A writer (``exclusive``) first finishes or discards what an interrupted writer
    left (see ``recover``; under ``policy``, else ``$TINYREG_TRUST`` if set); a reader that finds a
    staging folder gets PendingUpdate and changes nothing (readers never write)."""
    with folder_lock(root, exclusive=exclusive):
        found: Recovery | None = None
        if pending(root):
            if not exclusive:
                raise PendingUpdate(describe_pending(root))
            found = recover(root, policy=policy if policy is not None else _env_policy())
            if found is not None:
                import warnings

                warnings.warn(found.describe(), RecoveryWarning, stacklevel=3)
        yield found


class RecoveryWarning(UserWarning):
    """A writer completed or discarded what an interrupted writer left."""


def recover_folder(registry_path: Path, *, discard: bool = False,
                   trust: str | os.PathLike[str] | TrustPolicy | None = None) -> Recovery | None:
    """``tinyreg recover``: the writer that deals with a ``.tinyreg-update/`` (see ``recover``); None when there is none.

    ``trust`` (None: ``$TINYREG_TRUST`` if set): the post-image must verify under it before anything lands.
    """
    from registry._internal import hooks  # the trust policy lives above the store: bound by the package root

    policy = hooks.need(hooks.resolve_trust, "resolve_trust")(trust)
    root = Path(registry_path).parent
    with folder_lock(root, exclusive=True):
        return recover(root, policy=policy, discard=discard)
