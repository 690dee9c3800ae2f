"""The registry file: find it, read it, and the one writer that changes it."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from registry._internal.hashing import Digest, read_file, sha256_bytes, sha256_file
from registry.errors import ConflictError, InputError, RegistryNotFound, SmokeOverwriteError, UsageError
from registry.store.layout import REGISTRY_NAME, ROOT_FILES, entry_files, trust_files
from registry.store.types import EntryV2, is_smoke

DEFAULT_SUBDIR = Path("model") / "tiny"
CURRENT_SCHEMA_VERSION = 2
LEGACY_SCHEMA_VERSIONS = (0, 1)

Entry = EntryV2  # the typed row (registry.store.types); a document row is read as one


@dataclass
class Registry:
    """A registry document in memory, with the folder that holds it."""

    path: Path
    doc: dict[str, Any] = field(default_factory=dict)
    # relative path -> new bytes (None: remove); lands only when the transaction commits
    staged: dict[str, bytes | None] = field(default_factory=dict, repr=False, compare=False)
    # run by transaction() once the body returned and the new document validated, with the final
    # registry.json bytes; a hook may stage files (e.g. the snapshot signature over the final folder:
    # ``staged`` then holds every file of the update) but not change ``doc``
    before_commit: list[Callable[[Registry, bytes], None]] = field(default_factory=list, repr=False, compare=False)
    # relative path -> (a file on disk, its sha256, its size): large files staged without holding them in
    # memory (``stage_file``); commit streams each into place and refuses one that no longer hashes to its pin
    staged_files: dict[str, tuple[Path, str, int]] = field(default_factory=dict, repr=False, compare=False)
    # the registry.json bytes ``doc`` was parsed from (read_registry): readers that need the text or its
    # sha256 (verify's libvmaf scan, the snapshot check) use these, never a second read that may differ
    raw: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def schema_version(self) -> int | None:
        v = self.doc.get("schema_version")
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    @property
    def is_legacy(self) -> bool:
        return self.schema_version in LEGACY_SCHEMA_VERSIONS

    @property
    def entries(self) -> list[Entry]:
        models = self.doc.get("models")
        if not isinstance(models, list):
            return []
        return [cast(Entry, m) for m in models if isinstance(m, dict)]  # typed as the schema describes it

    def ids(self) -> list[str]:
        return [str(e.get("id")) for e in self.entries]

    def get(self, entry_id: str) -> Entry:
        for e in self.entries:
            if e.get("id") == entry_id:
                return e
        known = ", ".join(sorted(self.ids())) or "none"
        raise UsageError(f"no entry '{entry_id}' in {self.path} (known: {known})")

    def find(self, entry_id: str) -> Entry | None:
        for e in self.entries:
            if e.get("id") == entry_id:
                return e
        return None

    def stage(self, rel: str, data: bytes) -> None:
        """Stage ``data`` for ``rel`` (inside the registry folder) as part of this update.

        Every artifact a writer produces goes through here, never through a direct file
        write: nothing reaches the disk until the transaction commits, and then all of it
        does, together with the new ``registry.json``.
        """
        from registry._internal.paths import confine

        confine(self.root, rel, what="artifact")
        self.staged_files.pop(os.path.normpath(rel), None)
        self.staged[os.path.normpath(rel)] = bytes(data)

    def stage_file(self, rel: str, source: Path, sha256: str, size: int) -> None:
        """Stage the file ``source`` (hashing to ``sha256``, ``size`` bytes) for ``rel``, streamed on commit."""
        from registry._internal.paths import confine

        confine(self.root, rel, what="artifact")
        key = os.path.normpath(rel)
        self.staged.pop(key, None)
        self.staged_files[key] = (source, sha256.lower(), size)

    def stage_remove(self, rel: str) -> None:
        """Remove ``rel`` (inside the registry folder) as part of this update."""
        from registry._internal.paths import confine

        confine(self.root, rel, what="artifact")
        self.staged_files.pop(os.path.normpath(rel), None)
        self.staged[os.path.normpath(rel)] = None

    def read_bytes(self, rel: str) -> bytes:
        """The bytes of ``rel`` as this update will leave them (staged content first, then the disk)."""
        from registry._internal.paths import confine

        if rel in self.staged:
            data = self.staged[rel]
            if data is None:
                raise InputError(f"{rel}: no such file (removed in this update)")
            return data
        if rel in self.staged_files:
            from registry._internal.hashing import read_pinned

            src, sha, size = self.staged_files[rel]
            return read_pinned(src, sha, size)
        return read_file(confine(self.root, rel, what="file"), rel, cap="model")

    def exists(self, rel: str) -> bool:
        from registry._internal.paths import confine

        if rel in self.staged:
            return self.staged[rel] is not None
        if rel in self.staged_files:
            return True
        try:
            return confine(self.root, rel, what="file").exists()
        except OSError:
            return False

    def digest(self, rel: str) -> Digest:
        """sha256 and size of ``rel`` as this update will leave it (files on disk are streamed)."""
        from registry._internal.paths import confine

        if rel in self.staged:
            return sha256_bytes(self.read_bytes(rel))
        if rel in self.staged_files:
            _src, sha, size = self.staged_files[rel]
            return Digest(sha, size)  # checked again as commit streams it into place
        return sha256_file(confine(self.root, rel, what="file"))


ENV_REGISTRY = "TINYREG_REGISTRY"


def _in_folder(folder: Path) -> Path | None:
    """``folder/registry.json``, else ``folder/model/tiny/registry.json``, else None."""
    for cand in (folder / REGISTRY_NAME, folder / DEFAULT_SUBDIR / REGISTRY_NAME):
        if cand.is_file():
            return cand
    return None


def _named(p: Path, what: str) -> Path:
    if p.is_dir():
        found = _in_folder(p)
        if found is None:
            raise RegistryNotFound(f"{what}: no {REGISTRY_NAME} or {DEFAULT_SUBDIR / REGISTRY_NAME} in that folder")
        return found
    if not p.is_file():
        raise RegistryNotFound(f"{what}: no registry file there")
    return p


def find_registry(explicit: str | os.PathLike[str] | None = None, start: Path | None = None) -> Path:
    """Locate registry.json: one lookup for the CLI's ``--registry``, the library's ``registry=`` and the current folder.

    ``explicit`` (a file, or a folder: its ``registry.json``, else its ``model/tiny/registry.json``)
    wins; else ``$TINYREG_REGISTRY`` (the same rule), for registries kept outside any checkout;
    else, the way git finds its repository, ``registry.json`` in the current folder (or ``start``),
    else ``model/tiny/registry.json`` in it or any parent.
    """
    if explicit is not None:
        p = Path(explicit).expanduser()
        return _named(p, str(p))
    env = os.environ.get(ENV_REGISTRY)
    if env:
        return _named(Path(env).expanduser(), f"{ENV_REGISTRY}={env}")
    here = (start or Path.cwd()).resolve()
    if (here / REGISTRY_NAME).is_file():
        return here / REGISTRY_NAME
    for folder in (here, *here.parents):
        cand = folder / DEFAULT_SUBDIR / REGISTRY_NAME
        if cand.is_file():
            return cand
    raise RegistryNotFound(
        f"no {REGISTRY_NAME} here or {DEFAULT_SUBDIR / REGISTRY_NAME} in {here} or a parent",
        hint="registry",
    )


def default_init_folder() -> Path:
    """Where a new registry goes when no folder is named: ``$TINYREG_REGISTRY`` if set (the folder it
    names, or the folder of the ``registry.json`` it names), else ``model/tiny``, so that every later
    command finds what ``init`` made."""
    env = os.environ.get(ENV_REGISTRY)
    if not env:
        return DEFAULT_SUBDIR
    p = Path(env).expanduser()
    return p.parent if p.name == REGISTRY_NAME else p


def parse_registry_bytes(data: bytes, source: str) -> dict[str, Any]:
    from registry._internal.jsonio import loads_json

    doc = loads_json(data, source)
    if not isinstance(doc, dict):
        raise InputError(f"{source}: top level must be a JSON object, got {type(doc).__name__}")
    return doc


def read_registry(path: str | os.PathLike[str]) -> Registry:
    p = Path(path)
    if not p.exists():
        raise RegistryNotFound(f"{p}: no such file")
    data = read_file(p, cap="registry")
    return Registry(p, parse_registry_bytes(data, str(p)), raw=data)


# Keys that lead every object of registry.json, in this order; all other keys follow, sorted.
# The VMAFx fork's C loader finds an entry's bundle by scanning the raw text: the "onnx" key
# whose value is the model's file name, then the first "sigstore_bundle" before the next
# occurrence of the string "onnx". With "sigstore_bundle" right after "onnx" nothing a row
# holds (provenance.tools.onnx, a files[] role "onnx", a future field) can come between them.
REGISTRY_LEADING_KEYS = ("id", "onnx", "sigstore_bundle")


def ordered(value: Any, leading: tuple[str, ...] = ()) -> Any:
    """``value`` with every object's keys in a defined order: ``leading`` (those present) first, then sorted."""
    if isinstance(value, dict):
        first = [k for k in leading if k in value]
        rest = sorted(k for k in value if k not in leading)
        return {k: ordered(value[k], leading) for k in first + rest}
    if isinstance(value, list):
        return [ordered(v, leading) for v in value]
    return value


# The strings libvmaf's scan looks for. In registry.json the raw text holds them only as a row's
# own keys: anywhere else (a files[] role "onnx", provenance.tools.onnx, a note that is "onnx" or
# ends in a quoted "onnx") their first letter is written as a \u escape, which every JSON reader
# decodes to the same string. Otherwise a note "onnx" followed by "opset": 17 ends libvmaf's
# lookup of every later entry (the value after the next ':' is not a string).
SCAN_NEEDLES = ("onnx", "sigstore_bundle")
_ROW_PATHS = (("models",), ("migration", "left_out"))  # lists whose items are registry rows


def _json_str(s: str, raw: bool) -> str:
    out = json.dumps(s, ensure_ascii=True)
    if raw:
        return out
    for needle in SCAN_NEEDLES:
        # the raw text holds '"needle"' for the string itself, or for one ending in a quote and the needle
        if s == needle or s.endswith('"' + needle):
            out = out[: len(out) - 1 - len(needle)] + f"\\u{ord(needle[0]):04x}" + needle[1:] + '"'
    return out


def _dump(value: Any, level: int, path: tuple[str, ...], row: bool) -> str:
    if isinstance(value, str):
        return _json_str(value, False)
    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{_json_str(str(k), row and k in SCAN_NEEDLES)}: {_dump(v, level + 1, (*path, str(k)), False)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        rows = path in _ROW_PATHS
        return "[\n" + ",\n".join(f"{inner}{_dump(v, level + 1, (*path, '[]'), rows)}" for v in value) + "\n" + pad + "]"
    return json.dumps(value)


def dumps_registry(doc: Mapping[str, Any]) -> bytes:
    """Stable JSON: models sorted by id, every object's keys in the defined order
    (``REGISTRY_LEADING_KEYS`` first, the rest sorted), 2-space indent, ASCII, and the strings
    libvmaf's text scan looks for only where they are a row's own keys (``SCAN_NEEDLES``).

    Byte for byte what ``json.dumps(ordered(doc), indent=2)`` writes for a document without those
    strings elsewhere; deterministic, and a fixed point (``dumps_registry(loads(out)) == out``).
    Signatures never depend on it: signed statements are canonicalised on their own
    (``signing/_methods.canonical``).
    """
    out = copy.deepcopy(dict(doc))
    models = out.get("models")
    if isinstance(models, list):
        out["models"] = sorted(models, key=lambda m: str(m.get("id", "")) if isinstance(m, dict) else "")
    return (_dump(ordered(out, REGISTRY_LEADING_KEYS), 0, (), False) + "\n").encode("utf-8")


def dumps_json(doc: Any, leading: tuple[str, ...] = ()) -> bytes:
    """Stable JSON: ``leading`` keys first in every object, the rest sorted."""
    return (json.dumps(ordered(doc, leading), indent=2, ensure_ascii=True) + "\n").encode("utf-8")


def new_registry_doc() -> dict[str, Any]:
    return {"schema_version": CURRENT_SCHEMA_VERSION, "models": []}


def init_registry(folder: Path) -> Path:
    """Create ``folder/registry.json`` (schema_version 2, no models) if absent."""
    from registry.store.commit import commit, locked

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REGISTRY_NAME
    with locked(folder, exclusive=True):
        if path.exists():
            raise UsageError(f"{path} already exists")
        commit(folder, {}, dumps_registry(new_registry_doc()))
    return path


@contextmanager
def reading(path: str | os.PathLike[str], *, tolerate_pending: bool = False) -> Iterator[str | None]:
    """Hold the registry's shared lock while reading several of its files (``verify``, ``load``).

    Readers never write: a ``.tinyreg-update/`` left in the folder is not applied. It raises
    PendingUpdate (IntegrityError), or with ``tolerate_pending`` is yielded as the line to
    report (``verify``: the folder is read as registry.json says); otherwise yields None.
    No writer is half way through while the shared lock is held, so a staging folder seen
    here is one a writer left behind or someone planted.
    """
    from registry._internal.atomic import folder_lock
    from registry.store.commit import PendingUpdate, describe_pending, pending

    root = Path(path).parent
    with folder_lock(root, exclusive=False):
        note = describe_pending(root) if pending(root) else None
        if note is not None and not tolerate_pending:
            raise PendingUpdate(note)
        yield note


def expect_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """``expect`` for a writer that computed from the whole row ``entry``: any change to it refuses the update."""
    return {str(entry["id"]): copy.deepcopy(dict(entry))}


def _expected_changed(reg: Registry, expect: Mapping[str, Any]) -> None:
    for eid, want in sorted(expect.items()):
        fields = {"sha256": want} if isinstance(want, str) else dict(want)
        row = reg.find(eid)
        if row is None:
            raise ConflictError(f"entry '{eid}' was removed while this command ran; nothing written")
        if fields.get("id") == eid:  # the whole row as read (expect_row): a field added since counts too
            fields.update({k: None for k in row if k not in fields})
        for key, value in sorted(fields.items()):
            if row.get(key) != value:
                raise ConflictError(
                    f"entry '{eid}' changed while this command ran ({key} is now {str(row.get(key))[:16]}..., "
                    f"the command read {str(value)[:16]}...); nothing written, run it again"
                )


def _orphans(old: Registry, new: Registry) -> set[str]:
    """Files the old document referred to and the new one does not (removed on commit).

    Only where tinyreg wrote the old document (schema_version 2): it never deletes files of a
    format it only reads. Files the new document's migration record keeps are referred to.
    """
    from registry.store.layout import expected_files

    if old.is_legacy:
        return set()
    mig = new.doc.get("migration")
    kept = mig.get("unlisted") if isinstance(mig, dict) else None
    recorded = {str(u.get("path")) for u in kept if isinstance(u, dict)} if isinstance(kept, list) else set()
    return expected_files(old) - expected_files(new) - recorded


@contextmanager
def transaction(path: Path, *, expect: Mapping[str, Any] | None = None) -> Iterator[Registry]:
    """The one writer: lock, re-read, let the caller mutate and stage, validate, commit the whole folder.

    Two processes in a transaction on the same registry serialise on the lock, and
    each re-reads under it, so neither loses the other's rows. ``expect`` (entry id ->
    the sha256 of the fp32 model the caller computed from, a mapping of fields ->
    values, or the whole row as read: ``expect_row``) refuses the update if that entry
    changed since the caller read it. Every write computed from an entry passes it.

    Nothing touches the disk while the body runs: files are staged
    (``reg.stage``/``reg.stage_remove``; ``reg.read_bytes`` sees them). When the body
    returns, the new document must pass the schema and give no two entries the same
    file; files the old document referred to and the new one does not are staged for
    removal; ``reg.before_commit`` hooks (e.g. the whole-folder snapshot signature) see
    the final staged files and registry bytes and may stage more; then everything lands
    as one update (store/commit.py): a writer killed at any moment leaves the old
    registry or the new one, never a mix. If the body or a check raises, nothing is
    written.
    """
    from registry.store import schema
    from registry.store.commit import commit, locked

    with locked(path.parent, exclusive=True):
        reg = read_registry(path)
        schema.require_valid_registry(reg.doc, str(path))  # never build on a broken registry
        if expect:
            _expected_changed(reg, expect)
        old = Registry(path, copy.deepcopy(reg.doc))
        before = dumps_registry(reg.doc)
        yield reg
        after = dumps_registry(reg.doc)
        if after == before and not reg.staged and not reg.staged_files and not reg.before_commit:
            return
        schema.require_valid_registry(reg.doc, str(path))
        known = set(file_collisions(old.doc))
        clash = [c for c in file_collisions(reg.doc) if c not in known]
        if clash:
            eid, message = clash[0]
            raise UsageError(f"entry '{eid}': {message}; nothing written")
        for rel in sorted(_orphans(old, reg)):
            if rel not in reg.staged and rel not in reg.staged_files and reg.exists(rel):
                reg.stage_remove(rel)
        for hook in reg.before_commit:
            hook(reg, after)
        if dumps_registry(reg.doc) != after:
            raise RuntimeError("a before_commit hook changed the registry document")
        commit(reg.root, reg.staged, after, sources=reg.staged_files)


def file_collisions(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(entry id, message) for every file name two entries would share, or an entry shares with the registry.

    Names are those an entry refers to plus those reserved for it (its int8, calibration,
    gate-input and bundle names), so ``--id other.int8`` cannot take another entry's int8.
    Entries with the same id are reported by the id check, not here.
    """
    root = set(ROOT_FILES) | trust_files(doc)
    owner: dict[str, str] = {}
    out: list[tuple[str, str]] = []
    models = doc.get("models")
    for e in models if isinstance(models, list) else []:
        if not isinstance(e, dict) or not isinstance(e.get("id"), str):
            continue
        eid = e["id"]
        for rel in sorted(entry_files(e, reserved=True)):
            if rel in root:
                out.append((eid, f"{rel} is a file of the registry itself, not of an entry"))
            elif owner.setdefault(rel, eid) != eid:
                out.append((eid, f"{rel} is also a file of entry '{owner[rel]}'"))
    return out


def merge_entry(reg: Registry, fields: Mapping[str, Any], *, force: bool = False) -> Entry:
    """Merge ``fields`` into the row with the same id (or add it).

    Fields the caller does not mention are kept, unknown ones included; a value
    of ``None`` removes a field. A row that holds a real (non-smoke) artifact is
    not replaced by a smoke one unless ``force``.
    """
    entry_id = fields.get("id")
    if not isinstance(entry_id, str) or not entry_id:
        raise UsageError("an entry needs an id")
    models = reg.doc.setdefault("models", [])
    if not isinstance(models, list):
        raise InputError(f"{reg.path}: 'models' is not a list")
    row = reg.find(entry_id)
    if row is None:
        row = {}
        models.append(row)
    elif is_smoke(fields) and not is_smoke(row) and not force:
        raise SmokeOverwriteError(
            f"entry '{entry_id}' holds a real (non-smoke) model; refusing to replace it with a "
            "smoke placeholder unless forced", hint="force"
        )
    raw = cast("dict[str, Any]", row)  # a merge by key: any field a writer passes
    for key, value in fields.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = copy.deepcopy(value)
    return row
