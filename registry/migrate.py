"""``tinyreg migrate``: turn a VMAFx schema_version 0/1 registry into schema_version 2, in place.

Lossless by construction: every field of every kept row keeps its value (the one
exception is an ``opset`` that disagrees with the graph, which is corrected and
reported), fields tinyreg does not know are kept, sidecars stay where they are.
What is added: ``files`` (every file the entry loads, external data found from the
graph), ``size``, ``io`` read from the graph, ``smoke: false`` where v1 left the
default implicit, an ``adopted`` provenance record and a model card per entry.

The update is one transaction of the one writer. Nothing is re-pinned on trust:
a model or int8 file whose bytes differ from the v1 ``sha256``/``int8_sha256`` makes
the migration refuse, so a migration never launders a tampered file into pins.
Entries with missing files make it refuse with the full list; ``skip_missing``
leaves those rows out of ``models`` but keeps them, unchanged, in the top-level
``migration`` record, together with the model files that no kept entry loads
(pinned by sha256, so ``verify`` notices if they change later).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from registry._internal.hashing import sha256_bytes, sha256_file
from registry._internal.jsonio import loads_json
from registry._internal.paths import confine
from registry._internal.safeio import read_raw
from registry.errors import CheckFailed, Error, InputError, UsageError
from registry.onnx.inspect import ModelInfo, inspect_bytes
from registry.store.document import CURRENT_SCHEMA_VERSION, Entry, Registry, transaction
from registry.store.layout import ROOT_FILES, SCHEMA_NAME, STAGING_DIR, card_rel, int8_rel, sidecar_rel, trust_files
from registry.store.sidecar import patch_sidecar
from registry.store.types import EntryV1, declares_int8


class MigrationRefused(CheckFailed):
    """The registry cannot be migrated as it is (missing or mismatching files); nothing was written."""


@dataclass
class EntryPlan:
    id: str
    added: list[str] = field(default_factory=list)  # fields the migration adds
    files: list[str] = field(default_factory=list)  # paths pinned in files[]
    opset: tuple[int | None, int] | None = None  # (registry, graph) where they disagreed
    sidecar_fixes: list[str] = field(default_factory=list)  # e.g. "opset 17 -> 18"
    card: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "added": sorted(self.added),
            "files": sorted(self.files),
            "opset_corrected": None if self.opset is None else {"registry": self.opset[0], "graph": self.opset[1]},
            "sidecar_fixes": list(self.sidecar_fixes),
            "card": self.card,
        }


@dataclass
class Migration:
    """What a migration does (or did, or would do)."""

    registry: str
    from_version: int | None
    noop: bool = False
    dry_run: bool = False
    written: bool = False
    entries: list[EntryPlan] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # entry -> missing files
    broken: dict[str, list[str]] = field(default_factory=dict)  # entry -> problems --skip-missing cannot skip
    left_out: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)  # model files no kept entry loads, recorded with pins
    # registry.schema.json, for the fork's CI gate: "extended", "written" (there was none),
    # "unchanged" (already accepts what tinyreg writes) or "left as is: <why>"
    schema_file: str = ""

    @property
    def refused(self) -> bool:
        return bool(self.broken) or (bool(self.missing) and not self.left_out)

    def as_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "from_schema_version": self.from_version,
            "to_schema_version": CURRENT_SCHEMA_VERSION,
            "noop": self.noop,
            "dry_run": self.dry_run,
            "written": self.written,
            "refused": self.refused,
            "entries": [e.as_json() for e in sorted(self.entries, key=lambda e: e.id)],
            "missing": {k: sorted(v) for k, v in sorted(self.missing.items())},
            "broken": {k: sorted(v) for k, v in sorted(self.broken.items())},
            "left_out": sorted(self.left_out),
            "unlisted": sorted(self.unlisted),
            "schema_file": self.schema_file,
        }

    def refusal(self) -> str:
        parts = [f"{eid}: {', '.join(sorted(p))}" for eid, p in sorted(self.broken.items())]
        if not self.left_out:
            parts += [f"{eid}: missing {', '.join(sorted(p))}" for eid, p in sorted(self.missing.items())]
        hint = " (entries with missing files can be left out, each reported)" if self.missing and not self.broken else ""
        return f"{self.registry}: cannot migrate to schema_version 2; nothing written{hint}: " + "; ".join(parts)


@dataclass
class _Prepared:
    row: Entry  # the migrated row
    plan: EntryPlan
    sidecar_data: bytes | None  # corrected sidecar bytes to stage, if any


def _tool_versions() -> dict[str, str]:
    from registry.export.smoke import tool_versions

    return tool_versions("onnx")


def _read(root: Path, rel: str, what: str) -> bytes | None:
    path = confine(root, rel, what=what)
    try:
        return read_raw(path, "document")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return None


def _fix_sidecar_opset(data: bytes, graph_opset: int) -> tuple[bytes, list[str]]:
    """Correct ``opset``/``onnx_opset`` in a sidecar (their only change), or leave it for verify to report."""
    try:
        doc = loads_json(data, "sidecar")
    except InputError:
        return data, []
    if not isinstance(doc, dict):
        return data, []
    changes = {k: graph_opset for k in ("opset", "onnx_opset")
               if isinstance(doc.get(k), int) and not isinstance(doc.get(k), bool) and doc[k] != graph_opset}
    new = patch_sidecar(data, changes) if changes else None
    if new is None:
        return data, []
    return new, [f"{k} {doc[k]} -> {graph_opset}" for k in sorted(changes)]


def _prepare_entry(reg: Registry, row: EntryV1, from_version: int | None, tools: dict[str, str], out: Migration) -> _Prepared | None:
    """The migrated row of one v1 row, or None (with the reason in ``out.missing``/``out.broken``)."""
    from registry.store.pins import compute_pins

    root = reg.root
    eid = str(row["id"])
    onnx_rel = str(row["onnx"])
    missing: list[str] = []
    broken: list[str] = []
    try:
        data = _read(root, onnx_rel, "onnx")
    except Error as exc:
        out.broken[eid] = [exc.diagnostics()]
        return None
    info: ModelInfo | None = None
    if data is None:
        missing.append(onnx_rel)
    else:
        if sha256_bytes(data).sha256 != row.get("sha256"):
            broken.append(f"{onnx_rel} does not match the registry's sha256 (refusing to re-pin changed bytes)")
        try:
            info = inspect_bytes(data, onnx_rel)
        except Error as exc:
            broken.append(exc.diagnostics())
    folder = str(Path(onnx_rel).parent)

    def externals(inf: ModelInfo) -> None:
        for loc in sorted({e.location for e in inf.external}):
            ext = loc if folder == "." else f"{folder}/{loc}"
            try:
                if not confine(root, ext, what="external data").is_file():
                    missing.append(ext)
            except Error as exc:
                broken.append(exc.diagnostics())

    if info is not None:
        externals(info)
    declares = declares_int8(row)
    if declares:
        i8 = int8_rel(onnx_rel)
        idata = _read(root, i8, "int8")
        if idata is None:
            missing.append(i8)
        else:
            if sha256_bytes(idata).sha256 != row.get("int8_sha256"):
                broken.append(f"{i8} does not match the registry's int8_sha256 (refusing to re-pin changed bytes)")
            try:
                externals(inspect_bytes(idata, i8))
            except Error as exc:
                broken.append(exc.diagnostics())
    side = sidecar_rel(onnx_rel)
    side_data = _read(root, side, "sidecar")
    if side_data is None:
        missing.append(side)  # the VMAFx format: every model carries <basename>.json
    if isinstance(row.get("quant_calibration_set"), str):
        broken.append("quant_calibration_set is relative to the repository root in schema_version 1 and to the "
                      "registry folder in 2; move the set into the registry folder and record its path there first")
    if not row.get("license"):
        broken.append("no license (schema_version 2 requires one)")
    if broken:
        out.broken[eid] = broken
    if missing:
        out.missing[eid] = missing
    if broken or missing or info is None:
        return None

    plan = EntryPlan(eid)
    new = cast(Entry, copy.deepcopy(row))  # the v1 row becomes a v2 one: every v1 field keeps its value
    graph_opset = info.opset
    if graph_opset is not None and new.get("opset") != graph_opset:
        if "opset" in new:
            plan.opset = (new["opset"], graph_opset)
        else:
            plan.added.append("opset")
        new["opset"] = graph_opset
    if "smoke" not in new:
        new["smoke"] = False  # the v1 default, made explicit (v2 requires it)
        plan.added.append("smoke")
    new["io"] = info.io_json()
    new["provenance"] = {
        "adopted": {"from_schema_version": from_version, "tool": f"tinyreg {tools.get('tinyreg', '')}".strip()},
        "tools": tools,
    }
    plan.added += ["io", "provenance", "size", "files"]
    sidecar_data = None
    if graph_opset is not None and side_data is not None:
        fixed, fixes = _fix_sidecar_opset(side_data, graph_opset)
        if fixes:
            sidecar_data, plan.sidecar_fixes = fixed, [f"{side}: {f}" for f in fixes]
    v2 = Registry(reg.path, {"schema_version": CURRENT_SCHEMA_VERSION, "models": [new]})
    try:
        pins = compute_pins(v2, new)
    except Error as exc:
        out.broken[eid] = [exc.diagnostics()]
        return None
    if pins.get("sha256") != row.get("sha256") or (declares and pins.get("int8_sha256") != row.get("int8_sha256")):
        out.broken[eid] = [f"{onnx_rel} changed while it was read"]
        return None
    if sidecar_data is not None:  # pin the corrected sidecar, not the bytes it replaces
        d = sha256_bytes(sidecar_data)
        for f in pins["files"]:
            if f["path"] == side:
                f["sha256"], f["size"] = d.sha256, d.size
    new.update(pins)
    plan.files = [str(f["path"]) for f in new["files"]]
    plan.card = card_rel(eid)
    return _Prepared(new, plan, sidecar_data)


def _unlisted(root: Path, pinned: set[str]) -> list[dict[str, Any]]:
    """Files in the folder (any name, hidden ones and subfolders too) that the migrated registry does not
    expect, pinned so later changes are noticed (``verify`` decides "unlisted" by the same expected set)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != STAGING_DIR and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            rel = os.path.normpath(os.path.relpath(os.path.join(dirpath, name), root))
            if rel in ROOT_FILES or rel in pinned or os.path.islink(os.path.join(dirpath, name)):
                continue
            d = sha256_file(Path(dirpath) / name)
            out.append({"path": rel.replace(os.sep, "/"), "sha256": d.sha256, "size": d.size})
    return out


def _schema_file(reg: Registry, out: Migration) -> bytes | None:
    """New bytes for the folder's ``registry.schema.json`` (the fork's CI gate validates against it), or None.

    The folder's own schema keeps every rule it has and also accepts schema_version 2 and exactly
    the fields tinyreg writes (``store/folder_schema.py``); one without the VMAFx shape is left as
    it is and reported, never replaced by a looser one.
    """
    from registry.store.folder_schema import UnrecognisedSchema, compat_schema, compat_schema_bytes

    try:
        current = reg.read_bytes(SCHEMA_NAME) if reg.exists(SCHEMA_NAME) else None
        if current is None:
            out.schema_file = "written"
            return compat_schema_bytes(None)
        base = loads_json(current, SCHEMA_NAME)
        if not isinstance(base, dict):
            raise UnrecognisedSchema("not a JSON object")
        if compat_schema(base) == base:
            out.schema_file = "unchanged"
            return None
        new = compat_schema_bytes(base)
    except (Error, UnrecognisedSchema) as exc:
        why = exc.diagnostics() if isinstance(exc, Error) else f"not the VMAFx schema shape ({exc})"
        out.schema_file = f"left as is: {why}"
        return None
    out.schema_file = "extended"
    return new


def _plan(reg: Registry, out: Migration) -> tuple[list[_Prepared], list[Entry]]:
    tools = _tool_versions()
    prepared: list[_Prepared] = []
    dropped: list[Entry] = []
    for row in reg.entries:
        p = _prepare_entry(reg, row, reg.schema_version, tools, out)
        if p is None:
            dropped.append(row)
        else:
            prepared.append(p)
            out.entries.append(p.plan)
    return prepared, dropped


def migrate_registry(registry_path: Path, *, dry_run: bool = False, skip_missing: bool = False) -> Migration:
    """Migrate in place as one transaction; returns what was (or, with ``dry_run``, would be) done.

    Raises MigrationRefused (exit 1, nothing written) when files are missing (unless
    ``skip_missing``) or do not match their v1 pins. A schema_version 2 registry is a no-op.
    """
    from registry.store.card import write_card

    with transaction(registry_path) as reg:
        out = Migration(str(registry_path), reg.schema_version, dry_run=dry_run)
        if reg.schema_version == CURRENT_SCHEMA_VERSION:
            # already version 2: only the fork's gate file may be missing or outdated (a folder
            # tinyreg made, to be adopted by a VMAFx repository); otherwise nothing to do
            schema_data = _schema_file(reg, out)
            if schema_data is None or dry_run:
                out.noop = schema_data is None
                return out
            reg.stage(SCHEMA_NAME, schema_data)
            out.written = True
            return out
        if not reg.is_legacy:
            raise UsageError(f"{registry_path}: schema_version {reg.doc.get('schema_version')!r} cannot be migrated")
        prepared, dropped = _plan(reg, out)
        if out.missing and skip_missing and not out.broken:
            out.left_out = sorted(str(r["id"]) for r in dropped)
        pinned = {str(f["path"]) for p in prepared for f in p.row["files"]} | {card_rel(p.plan.id) for p in prepared}
        unlisted = _unlisted(reg.root, pinned | trust_files(reg.doc))
        out.unlisted = [u["path"] for u in unlisted]
        schema_data = _schema_file(reg, out)
        if dry_run:
            return out
        if out.refused:
            raise MigrationRefused(out.refusal())
        record: dict[str, Any] = {
            "from_schema_version": reg.schema_version,
            "tool": f"tinyreg {_tool_versions().get('tinyreg', '')}".strip(),
            "opset_corrected": {p.plan.id: {"registry": p.plan.opset[0], "graph": p.plan.opset[1]}
                                for p in prepared if p.plan.opset is not None},
            "left_out": [dict(copy.deepcopy(r), missing=sorted(out.missing.get(str(r["id"]), []))) for r in dropped],
            "unlisted": unlisted,
        }
        for p in prepared:
            if p.sidecar_data is not None:
                reg.stage(sidecar_rel(str(p.row["onnx"])), p.sidecar_data)
        if schema_data is not None:
            reg.stage(SCHEMA_NAME, schema_data)
        reg.doc["schema_version"] = CURRENT_SCHEMA_VERSION
        reg.doc["models"] = [p.row for p in prepared]
        reg.doc["migration"] = record
        for p in prepared:
            write_card(reg, p.row)
        problems = verify_staged(reg)
        if problems:
            raise MigrationRefused(f"{registry_path}: the migrated registry would not pass verify; nothing written: "
                                   + "; ".join(problems))
        out.written = True
        return out


def verify_staged(reg: Registry) -> list[str]:
    """The errors ``verify`` would report on the registry this update leaves (staged files and document), verify before you write.

    The result is laid out in a temporary folder (hard links where the file system allows, copies
    otherwise, nothing but regular files) and checked by the very checks ``verify`` runs; the registry
    folder itself is not touched.
    """
    import shutil
    import tempfile

    from registry.store.document import dumps_registry
    from registry.store.layout import REGISTRY_NAME
    from registry.verify import ERROR, verify_unlocked

    root = reg.root
    with tempfile.TemporaryDirectory(prefix="tinyreg-migrate-check-") as tmp:
        dst = Path(tmp)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != STAGING_DIR and not os.path.islink(os.path.join(dirpath, d))]
            here = Path(dirpath).relative_to(root)
            (dst / here).mkdir(parents=True, exist_ok=True)
            for name in filenames:
                src = Path(dirpath) / name
                if os.path.islink(src) or not src.is_file():
                    continue  # verify on the real folder reports these; the check needs only regular files
                try:
                    os.link(src, dst / here / name)
                except OSError:
                    shutil.copyfile(src, dst / here / name)
        for rel, data in reg.staged.items():
            target = dst / rel
            target.unlink(missing_ok=True)
            if data is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        (dst / REGISTRY_NAME).unlink(missing_ok=True)
        (dst / REGISTRY_NAME).write_bytes(dumps_registry(reg.doc))
        report = verify_unlocked(dst / REGISTRY_NAME)
    return [f"{f.entry}: {f.message}" for f in report.findings if f.severity == ERROR]


def check_round_trip(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Differences between v1 rows and their migrated rows, other than reported opset corrections (for tests and audits)."""
    corrected = (after.get("migration") or {}).get("opset_corrected") or {}
    migrated = {str(e.get("id")): e for e in after.get("models") or []}
    diffs = []
    for row in before.get("models") or []:
        eid = str(row.get("id"))
        new = migrated.get(eid)
        if new is None:
            continue
        for k, v in row.items():
            if new.get(k) == v:
                continue
            if k == "opset" and corrected.get(eid, {}).get("registry") == v and corrected[eid].get("graph") == new.get(k):
                continue
            diffs.append(f"{eid}.{k}: {v!r} -> {new.get(k)!r}")
    return diffs


def read_plan(registry_path: Path, *, skip_missing: bool = False) -> Migration:
    """A dry run (convenience for callers that only want to look)."""
    return migrate_registry(registry_path, dry_run=True, skip_missing=skip_missing)


__all__ = ["Migration", "MigrationRefused", "check_round_trip", "migrate_registry", "patch_sidecar", "read_plan"]
