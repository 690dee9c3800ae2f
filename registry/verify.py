"""``tinyreg verify``: the pre-merge gate over a whole registry, as a table of named checks.

Each check is one small function registered with :func:`check` under a stable id (its
docstring says what it checks); :func:`verify_registry` runs the table in one loop:
the ``registry`` checks once, the ``entry`` checks once per entry, then the ``folder``
checks, which see every file the entries claimed. Every :class:`Finding` carries the id
of the check that made it (``check_id``) beside its topic (``check``: ``pins``,
``paths``, ...; one check can report several topics). docs/architecture.md lists the ids.

Adding a check is adding one decorated function below, in the place of the table where
it should run.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from registry._internal.hashing import check_pinned_file, sha256_bytes
from registry._internal.jsonio import loads_json
from registry._internal.paths import confine
from registry._internal.safeio import open_regular
from registry.errors import Error, InputError, IntegrityError, SignatureError, printable
from registry.onnx.allowlist import VMAFX_PROFILE, Allowlist, check_model, load_allowlist
from registry.onnx.inspect import ModelInfo, inspect_bytes
from registry.store.document import Entry, Registry, read_registry
from registry.store.layout import (
    REGISTRY_NAME,
    SCHEMA_NAME,
    STAGING_DIR,
    card_rel,
    expected_files,
    fp16_rel,
    int8_rel,
    sidecar_rel,
)
from registry.store.schema import schema_errors
from registry.store.types import declares_int8, has_int8, has_signature, is_adopted, is_smoke, pinned_files

if TYPE_CHECKING:
    from datetime import datetime

    from registry.signing.policy import TrustPolicy

__all__ = ["CHECKS", "ERROR", "SELF_VOUCHING", "WARNING", "Check", "Context", "Finding", "Report", "Subject", "check",
           "run_checks", "unreadable_report", "verify_registry", "verify_unlocked"]

ERROR = "error"
WARNING = "warning"
SELF_VOUCHING = ("no trust policy given (--trust FILE or TINYREG_TRUST): the registry vouches for itself; "
                 "whoever can edit the folder can change what is accepted")
# what verify reads whole without a size pin: no ONNX protobuf exceeds 2 GiB; documents are small
MAX_UNPINNED_READ = (1 << 31) - 1
MAX_DOCUMENT_READ = 1 << 24


@dataclass(frozen=True)
class Finding:
    """One finding: the entry (``-`` for the registry), its topic, the message, the severity, and the check that made it."""

    entry: str
    check: str  # the topic: pins, paths, files, sidecar, allowlist:<profile>, ...
    message: str
    severity: str = ERROR
    check_id: str = ""  # the id of the check in the table (docs/architecture.md) that reported it

    def as_json(self) -> dict[str, str]:
        return {"entry": self.entry, "check": self.check, "message": self.message, "severity": self.severity,
                "check_id": self.check_id}


@dataclass
class Report:
    registry: str
    schema_version: int | None
    entries: int = 0
    findings: list[Finding] = field(default_factory=list)
    checked_files: int = 0
    trust: str | None = None  # the consumer's trust policy; None: the registry vouches for itself

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "schema_version": self.schema_version,
            "ok": self.ok,
            "entries": self.entries,
            "checked_files": self.checked_files,
            "summary": {
                "errors": len(self.errors),
                "warnings": len(self.findings) - len(self.errors),
            },
            "findings": [f.as_json() for f in sorted(self.findings, key=_order)],
            "trust": {"policy": self.trust} if self.trust else {"policy": None, "note": SELF_VOUCHING},
        }


def unreadable_report(registry: str, exc: Error) -> dict[str, Any]:
    """The ``verify --json`` document for a registry that could not be read at all."""
    report = Report(registry, None)
    report.findings.append(Finding("-", "input", exc.diagnostics(), check_id="read"))
    return report.as_json()


def _order(f: Finding) -> tuple[str, str, str]:
    return (f.entry, f.check, f.message)


class Context:
    """What the checks share: the registry, the report, the allowlist, the files claimed and hashed so far."""

    def __init__(self, reg: Registry, report: Report, allow: Allowlist) -> None:
        self.reg = reg
        self.report = report
        self.allow = allow
        self.claimed: set[str] = set()
        self.digests: dict[str, str] = {}  # path -> sha256 of the bytes read in this run
        self.trust: TrustPolicy | None = None  # the consumer's policy: signatures are checked by the trust check
        self.now: datetime | None = None
        self.pending_update: str | None = None  # an update journal reading() found and left alone
        self.current = ""  # the id of the check running now: every finding carries it

    def add(self, entry: str, check: str, message: str, severity: str = ERROR) -> None:
        self.report.findings.append(Finding(printable(entry), check, printable(message), severity, self.current))

    def path(self, eid: str, rel: str, what: str) -> Path | None:
        try:
            path = confine(self.reg.root, rel, what=what)
        except Error as exc:
            self.add(eid, "paths", exc.diagnostics())
            return None
        except (OSError, ValueError) as exc:
            self.add(eid, "paths", f"{what} {rel!r}: cannot resolve ({_why(exc)})")
            return None
        self.claimed.add(os.path.normpath(rel))
        return path

    def exists(self, eid: str, rel: str, what: str) -> bool | None:
        """Whether ``rel`` is there (None, with a finding, when that cannot even be asked)."""
        path = self.path(eid, rel, what)
        if path is None:
            return None
        try:
            path.lstat()
        except FileNotFoundError:
            return False
        except (OSError, ValueError) as exc:
            self.add(eid, "files", f"{what} {rel}: cannot read ({_why(exc)})")
            return None
        return True

    def read(self, eid: str, rel: str, what: str, size: Any = None, cap: int = MAX_UNPINNED_READ) -> bytes | None:
        """The bytes of ``rel``; a size pin (or, unpinned, ``cap``) is compared before anything is read."""
        path = self.path(eid, rel, what)
        if path is None:
            return None
        try:
            with open_regular(path) as (fh, actual):  # a FIFO, device or socket is refused without blocking
                if isinstance(size, int) and not isinstance(size, bool) and actual != size:
                    self.add(eid, "pins", f"{what} {rel}: size {actual} != pinned {size}")
                    if actual > MAX_DOCUMENT_READ:  # small enough to look into for more findings, or not read at all
                        return None
                if actual > cap:
                    self.add(eid, "files", f"{what} {rel}: {actual} bytes, more than {cap} (not read)")
                    return None
                data = fh.read(actual + 1)
        except FileNotFoundError:
            self.add(eid, "files", f"{what} {rel} is missing")
            return None
        except (OSError, ValueError) as exc:
            self.add(eid, "files", f"{what} {rel}: cannot read ({_why(exc)})")
            return None
        self.report.checked_files += 1
        return data

    def check_file(self, eid: str, rel: str, what: str, sha: Any, size: Any) -> None:
        """Compare a pinned file with its pin: size first (stat), then a streamed sha256."""
        path = self.path(eid, rel, what)
        if path is None:
            return
        if not isinstance(sha, str):
            self.add(eid, "pins", f"{what} {rel} is not pinned")
            return
        try:
            d = check_pinned_file(path, sha, size if isinstance(size, int) and not isinstance(size, bool) else None)
        except IntegrityError as exc:
            missing = "missing" in exc.diagnostics()
            self.add(eid, "files" if missing else "pins", f"{what} {rel} is missing" if missing else f"{what} {exc.diagnostics()}")
            return
        except Error as exc:
            self.add(eid, "files", f"{what} {rel}: {exc.diagnostics()}")
            return
        except ValueError as exc:
            self.add(eid, "files", f"{what} {rel}: cannot read ({_why(exc)})")
            return
        self.digests[rel] = d.sha256
        self.report.checked_files += 1


def _why(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc) or type(exc).__name__


def _check_pin(ctx: Context, eid: str, rel: str, data: bytes, sha: Any, size: Any, what: str) -> bool:
    d = sha256_bytes(data)
    ctx.digests[rel] = d.sha256
    ok = True
    if not isinstance(sha, str):
        ctx.add(eid, "pins", f"{what} {rel} is not pinned")
        return False
    if d.sha256 != sha:
        ctx.add(eid, "pins", f"{what} {rel}: sha256 {d.sha256[:12]}... != pinned {sha[:12]}...")
        ok = False
    return ok  # (the size pin was compared by ctx.read, before reading)


def _registry_bytes(reg: Registry) -> bytes:
    """The registry.json bytes ``reg.doc`` was parsed from (read once by read_registry)."""
    from registry._internal.hashing import read_file

    return reg.raw if reg.raw is not None else read_file(reg.path, cap="registry")


def _vmafx_folder(reg: Registry) -> bool:
    """A folder the VMAFx fork consumes: its own format, adopted by ``migrate``, or carrying its gate's schema file."""
    return reg.is_legacy or isinstance(reg.doc.get("migration"), dict) or reg.exists(SCHEMA_NAME)


def _check_vmafx_lookups(ctx: Context) -> None:
    """libvmaf's text lookups (``store/vmafx_scan.py``) must resolve every entry to its own bundle and sidecar values.

    An error where tinyreg wrote the text (a schema_version 2 document; a sidecar of an entry with
    a family): its writer guarantees the lookups, so a failure is a hand edit that breaks
    ``--tiny-model-verify`` or the model's I/O names. A warning in the fork's own files.
    """
    from registry.store.vmafx_scan import LOADER_CAP, ScanError, bundle_for, sidecar_reads

    reg = ctx.reg
    if not _vmafx_folder(reg):
        return
    text = _registry_bytes(reg)
    severity = WARNING if reg.is_legacy else ERROR
    if len(text) > LOADER_CAP:
        ctx.add("-", "vmafx:loader", f"{REGISTRY_NAME} is {len(text)} bytes: libvmaf refuses a registry over 1 MiB", severity)
        return
    for entry in reg.entries:
        eid, onnx = str(entry.get("id", "?")), entry.get("onnx")
        if not isinstance(onnx, str):
            continue
        name = Path(onnx).name
        want = entry.get("sigstore_bundle") if isinstance(entry.get("sigstore_bundle"), str) else None
        try:
            got = bundle_for(text, name)
        except ScanError as exc:
            ctx.add(eid, "vmafx:loader", f"libvmaf's bundle lookup of {name} fails ({exc})", severity)
            continue
        if got != want:
            ctx.add(eid, "vmafx:loader", f"libvmaf resolves the bundle of {name} to {got!r}; the entry says {want!r}"
                    + (" (libvmaf finds only models at the folder's root)" if name != onnx else ""), severity)
        side = sidecar_rel(onnx)
        try:
            data = reg.read_bytes(side) if reg.exists(side) else None
            doc = loads_json(data, side) if data is not None else None
        except Error:
            continue  # the sidecar check reports it
        if not isinstance(doc, dict) or data is None:
            continue
        wrong = [f"{k} {v!r} (the sidecar says {doc.get(k)!r})" for k, v in sidecar_reads(data).items() if v != doc.get(k)]
        if wrong:
            ctx.add(eid, "vmafx:loader", f"libvmaf reads from {side}: {'; '.join(wrong)}",
                    ERROR if isinstance(entry.get("family"), str) else WARNING)


def _check_vmafx_runtime(ctx: Context, eid: str, rel: str, info: ModelInfo, entry: Entry) -> None:
    """What the VMAFx fork's libvmaf will refuse to load (its runtime allowlist, the ``vmafx`` profile).

    Only in a folder VMAFx consumes: a schema_version 0/1 one, one ``migrate`` adopted (its
    ``migration`` record) or one that carries the fork's gate file ``registry.schema.json``.
    There a graph tinyreg built (the entry names a family) that libvmaf refuses is an error:
    tinyreg must not hand the adopter something its runtime rejects. A VMAFx model its own
    runtime already refuses (the fork's dynamic int8 siblings) is a warning: it was so before
    tinyreg. Other registries are not checked against the fork (``check-ops --profile vmafx`` is).
    """
    if VMAFX_PROFILE not in ctx.allow.doc["profiles"]:
        return  # a custom allowlist without the profile: nothing to say about the fork
    if not _vmafx_folder(ctx.reg):
        return
    allowed = set().union(*ctx.allow.ops(VMAFX_PROFILE).values())
    refused = sorted({n.op_type for n in info.nodes if n.op_type not in allowed})  # by name, as libvmaf checks
    if not refused:
        return
    ctx.add(eid, f"allowlist:{VMAFX_PROFILE}", f"{rel}: the VMAFx runtime allowlist refuses {', '.join(refused)} "
            "(libvmaf --tiny-model will not load this graph)", ERROR if isinstance(entry.get("family"), str) else WARNING)


def _check_sidecar(ctx: Context, eid: str, entry: Entry, info: ModelInfo | None) -> None:
    rel = sidecar_rel(str(entry["onnx"]))
    exists = ctx.exists(eid, rel, "sidecar")
    if exists is None:
        return
    if not exists:
        ctx.add(eid, "sidecar", f"sidecar {rel} is missing (every model carries <basename>.json)")
        return
    pin = None if ctx.reg.is_legacy else pinned_files(entry).get(rel)
    data = ctx.read(eid, rel, "sidecar", (pin or {}).get("size"), MAX_DOCUMENT_READ)
    if data is None:
        return
    if not ctx.reg.is_legacy:
        if pin is None:
            ctx.add(eid, "pins", f"sidecar {rel} is not pinned")
        else:
            _check_pin(ctx, eid, rel, data, pin.get("sha256"), pin.get("size"), "sidecar")
    try:
        doc = loads_json(data, f"sidecar {rel}")
    except InputError as exc:
        ctx.add(eid, "sidecar", exc.diagnostics())
        return
    for err in schema_errors(doc, "sidecar"):
        ctx.add(eid, "sidecar", f"sidecar {rel}: {err}")
    if not isinstance(doc, dict):
        return
    if "sha256" in doc and doc["sha256"] != entry.get("sha256"):
        ctx.add(eid, "sidecar", f"sidecar {rel}: sha256 {str(doc['sha256'])[:12]}... disagrees with the registry")
    if "int8_sha256" in doc and doc["int8_sha256"] != entry.get("int8_sha256"):
        ctx.add(eid, "sidecar", f"sidecar {rel}: int8_sha256 disagrees with the registry")
    if "smoke" in doc and bool(doc["smoke"]) != bool(entry.get("smoke", False)):
        ctx.add(eid, "smoke", f"sidecar {rel} says smoke={doc['smoke']} but the registry says smoke={entry.get('smoke', False)}")
    if "onnx" in doc and doc["onnx"] != entry.get("onnx"):
        ctx.add(eid, "sidecar", f"sidecar {rel}: onnx {doc['onnx']!r} disagrees with the registry ({entry.get('onnx')!r})")
    if info is None:
        return
    for key in ("opset", "onnx_opset"):
        if isinstance(doc.get(key), int) and doc[key] != info.opset:
            ctx.add(eid, "sidecar", f"sidecar {rel}: {key} {doc[key]} but the graph imports opset {info.opset}")
    in_names = {t.name for t in info.inputs}
    out_names = {t.name for t in info.outputs}
    if isinstance(doc.get("input_name"), str) and doc["input_name"] not in in_names:
        ctx.add(eid, "sidecar", f"sidecar {rel}: input_name {doc['input_name']!r} is not a graph input ({', '.join(sorted(in_names))})")
    if isinstance(doc.get("output_name"), str) and doc["output_name"] not in out_names:
        ctx.add(eid, "sidecar", f"sidecar {rel}: output_name {doc['output_name']!r} is not a graph output ({', '.join(sorted(out_names))})")
    if isinstance(doc.get("io"), dict) and doc["io"] != info.io_json():
        ctx.add(eid, "io", f"sidecar {rel}: I/O contract disagrees with the graph")


def _check_signature(ctx: Context, eid: str, entry: Entry, bundle: str) -> None:
    try:
        path = confine(ctx.reg.root, bundle, what="sigstore_bundle")
    except Error as exc:
        ctx.add(eid, "paths", exc.diagnostics())
        return
    ctx.claimed.add(os.path.normpath(bundle))
    if ctx.trust is not None:
        return  # _check_trust verifies every entry under the consumer's policy
    policy = ctx.reg.doc.get("signing")
    if not path.exists():
        if ctx.reg.is_legacy or isinstance(policy, dict):
            ctx.add(eid, "signature", f"sigstore_bundle {bundle} is listed but missing")
        else:  # VMAFx lists the bundle's place before release; with no policy nothing could verify it anyway
            ctx.add(eid, "signature", f"sigstore_bundle {bundle} is listed but not yet written (no signing policy; "
                    "'tinyreg trust' then 'tinyreg sign' make it)", WARNING)
        return
    if ctx.reg.is_legacy or not isinstance(policy, dict):
        ctx.add(eid, "signature", f"{bundle} is not checked: no trust policy given (--trust FILE) and the registry records "
                "no signing policy of its own", WARNING)
        return
    from registry.signing.verify import verify_entry_signature

    try:
        verify_entry_signature(ctx.reg, entry, digests=ctx.digests)
    except Error as exc:
        ctx.add(eid, "signature", exc.diagnostics())


def _check_policy(ctx: Context) -> None:
    policy = ctx.reg.doc.get("signing")
    if not isinstance(policy, dict):
        return
    for key in ("public_key", "trusted_root"):
        rel = policy.get(key)
        if not isinstance(rel, str):
            continue
        try:
            path = confine(ctx.reg.root, rel, what=f"signing.{key}")
        except Error as exc:
            ctx.add("-", "paths", exc.diagnostics())
            continue
        ctx.claimed.add(os.path.normpath(rel))
        if not path.is_file():
            ctx.add("-", "signature", f"signing.{key} {rel} is missing")


def _migration_kept(ctx: Context) -> dict[str, dict[str, Any]]:
    """Model files 'tinyreg migrate' found loaded by no entry and recorded with their pins."""
    mig = ctx.reg.doc.get("migration") if not ctx.reg.is_legacy else None
    kept = mig.get("unlisted") if isinstance(mig, dict) else None
    return {str(u["path"]): u for u in kept or [] if isinstance(u, dict) and isinstance(u.get("path"), str)}


def _unlisted(ctx: Context) -> None:
    """Every file (hidden ones and those in subfolders too) that the registry does not expect."""
    root = ctx.reg.root
    expected = expected_files(ctx.reg) | ctx.claimed
    kept = _migration_kept(ctx)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = os.path.relpath(dirpath, root)
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                filenames.append(d)  # a linked folder is reported like a file; never followed
                dirnames.remove(d)
        if here != "." and not dirnames and not filenames:
            found.append(os.path.normpath(here) + "/")
        for name in filenames:
            found.append(os.path.normpath(os.path.join(here, name)))
    for rel in sorted(found):
        if rel in expected:
            continue
        if rel.split("/")[0] == STAGING_DIR:
            continue  # reported once, as an interrupted update
        if rel in kept:  # found by 'tinyreg migrate', loaded by no entry, recorded with its pins
            pin = kept[rel]
            try:
                check_pinned_file(root / rel, str(pin.get("sha256")), pin.get("size") if isinstance(pin.get("size"), int) else None)
            except Error:
                ctx.add("-", "unlisted", f"{rel} is loaded by no entry and changed since the registry was migrated")
            else:
                ctx.add("-", "unlisted", f"{rel} is loaded by no entry (kept as found when the registry was migrated)", WARNING)
            continue
        ctx.add("-", "unlisted", f"{rel} is in the registry folder but the registry does not list it")


# ---------------------------------------------------------------------------------------------
# The table of checks

Scope = Literal["registry", "entry", "folder"]
CHECK_ID = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass
class Subject:
    """The entry one ``entry`` check looks at, with what earlier checks of the same entry learnt."""

    entry: Entry
    id: str
    onnx: str
    pins: dict[str, dict[str, Any]]
    data: bytes | None = None  # the model's bytes, read once by the ``model`` check
    info: ModelInfo | None = None  # its parsed graph, when it parses
    int8_info: ModelInfo | None = None  # the int8 sibling's parsed graph, when the ``int8`` check read one
    fp16_info: ModelInfo | None = None  # the fp16 sibling's parsed graph, when the ``fp16`` check read one


@dataclass(frozen=True)
class Check:
    """One named check: ``run(ctx)`` (scope ``registry``/``folder``) or ``run(ctx, subject)`` (scope ``entry``).

    ``guarded``: input the check cannot handle becomes an ``input`` finding (the rest of the
    table still runs); unguarded checks let bad input through to the caller (exit 2).
    """

    id: str
    scope: Scope
    run: Callable[..., None]
    guarded: bool = True

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.run) or ""


CHECKS: list[Check] = []


def check(check_id: str, scope: Scope, *, guarded: bool = True) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register the decorated function as the check ``check_id``; the table runs in the order of registration."""

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        if not CHECK_ID.match(check_id):
            raise ValueError(f"check id {check_id!r} is not a lowercase-dashed name")
        if any(c.id == check_id for c in CHECKS):
            raise ValueError(f"check id {check_id!r} is registered twice")
        if not (inspect.getdoc(fn) or "").strip():
            raise ValueError(f"check {check_id!r} has no docstring: say what it checks")
        CHECKS.append(Check(check_id, scope, fn, guarded))
        return fn

    return register


def _parse(ctx: Context, eid: str, rel: str, data: bytes) -> ModelInfo | None:
    try:
        return inspect_bytes(data, rel)
    except InputError as exc:
        ctx.add(eid, "onnx", exc.diagnostics())
        return None


def _check_allowlist(ctx: Context, eid: str, rel: str, info: ModelInfo, profile: str) -> None:
    model_dir = ctx.reg.root / Path(rel).parent
    for v in check_model(info, ctx.allow, profile, model_dir=model_dir):
        ctx.add(eid, f"allowlist:{profile}", f"{rel}: {v}", ERROR if v.severity == "error" else WARNING)


def _check_external(ctx: Context, s: Subject, rel: str, info: ModelInfo, ext_role: str) -> None:
    folder = str(Path(rel).parent)
    for loc in sorted({e.location for e in info.external}):
        ext_rel = loc if folder == "." else f"{folder}/{loc}"
        present = ctx.exists(s.id, ext_rel, "external data")
        if not present:
            if present is False:
                ctx.add(s.id, "files", f"external data {ext_rel} is missing")
            continue
        if ctx.reg.is_legacy:
            ctx.add(s.id, "pins", f"external data {ext_rel} of {rel} is loaded but not pinned (schema_version "
                    f"{ctx.reg.schema_version} cannot pin it; version 2 can)")
        else:
            pin = s.pins.get(ext_rel)
            if pin is None or pin.get("role") != ext_role:
                ctx.add(s.id, "pins", f"external data {ext_rel} of {rel} is not pinned as {ext_role}")
            else:
                ctx.check_file(s.id, ext_rel, "external data", pin.get("sha256"), pin.get("size"))


# roles checked where their graph or sidecar is read, not by the ``files`` check
GRAPH_ROLES = ("int8", "external_data", "int8_external_data", "fp16", "fp16_external_data", "sidecar")


@check("schema", "registry", guarded=False)
def check_schema(ctx: Context) -> None:
    """The registry document against its JSON schema (schemas/, one per schema_version)."""
    for err in schema_errors(ctx.reg.doc, "registry"):
        ctx.add("-", "schema", err)


@check("ids", "registry")
def check_ids(ctx: Context) -> None:
    """Every id names one entry, and no two entries claim the same file."""
    from registry.store.document import file_collisions

    counts = Counter(str(e.get("id")) for e in ctx.reg.entries)
    for eid, n in sorted(counts.items()):
        if n > 1:
            ctx.add(eid, "ids", f"id '{eid}' is used by {n} entries")
    for eid, message in file_collisions(ctx.reg.doc):
        ctx.add(eid, "ids", message)


@check("files", "entry")
def check_files(ctx: Context, s: Subject) -> None:
    """schema_version 2: every file of ``files[]`` matches its pin, and ``files[]`` pins the model with ``sha256``.

    (Graphs, their external data and the sidecar are compared where they are read.)
    """
    if ctx.reg.is_legacy:
        return
    for rel, pin in sorted(s.pins.items()):
        if rel == s.onnx or pin.get("role") in GRAPH_ROLES:
            continue  # checked with their graph / sidecar
        ctx.check_file(s.id, rel, str(pin.get("role", "file")), pin.get("sha256"), pin.get("size"))
    onnx_pin = s.pins.get(s.onnx)
    if onnx_pin is None or onnx_pin.get("sha256") != s.entry.get("sha256"):
        ctx.add(s.id, "pins", f"files[] does not pin {s.onnx} with the entry's sha256")


@check("model", "entry")
def check_model_file(ctx: Context, s: Subject) -> None:
    """The model file: its size pin compared before reading, its bytes read once against ``sha256``, parsed as ONNX."""
    s.data = ctx.read(s.id, s.onnx, "model", None if ctx.reg.is_legacy else s.entry.get("size"))
    if s.data is not None:
        _check_pin(ctx, s.id, s.onnx, s.data, s.entry.get("sha256"), s.entry.get("size"), "model")
        s.info = _parse(ctx, s.id, s.onnx, s.data)


@check("allowlist", "entry")
def check_allowlist(ctx: Context, s: Subject) -> None:
    """The fp32 graph uses only the operators, domains and opsets of the allowlist's ``fp32`` profile."""
    if s.info is not None:
        _check_allowlist(ctx, s.id, s.onnx, s.info, "fp32")


@check("external-data", "entry")
def check_external_data(ctx: Context, s: Subject) -> None:
    """Every external-data file the fp32 graph refers to is there and pinned (role ``external_data``)."""
    if s.info is not None:
        _check_external(ctx, s, s.onnx, s.info, "external_data")


@check("graph", "entry")
def check_graph(ctx: Context, s: Subject) -> None:
    """The registry's ``opset`` and I/O contract agree with the graph."""
    info = s.info
    if info is None:
        return
    entry = s.entry
    if "opset" in entry and entry["opset"] != info.opset:
        ctx.add(s.id, "opset", f"registry says opset {entry['opset']} but the graph imports {info.opset}")
    elif "opset" not in entry and not is_smoke(entry):
        ctx.add(s.id, "opset", "non-smoke entry records no opset", WARNING if ctx.reg.is_legacy else ERROR)
    if isinstance(entry.get("io"), dict) and entry["io"] != info.io_json():
        ctx.add(s.id, "io", "registry I/O contract disagrees with the graph "
                f"(graph: {json.dumps(info.io_json(), sort_keys=True)})")


@check("int8", "entry")
def check_int8(ctx: Context, s: Subject) -> None:
    """A declared int8 sibling: pinned, parses, within the ``int8`` allowlist profile, behind an accuracy budget.

    Its external data, like the fp32 graph's, is there and pinned (role ``int8_external_data``).
    """
    entry = s.entry
    if not declares_int8(entry):
        return
    i8 = int8_rel(s.onnx)
    if not has_int8(entry):
        ctx.add(s.id, "quant", f"quant_mode {entry.get('quant_mode')} but no int8_sha256")
    size = s.pins.get(i8, {}).get("size")
    idata = ctx.read(s.id, i8, "int8 model", size)
    if idata is not None:
        _check_pin(ctx, s.id, i8, idata, entry.get("int8_sha256"), size, "int8 model")
        info = s.int8_info = _parse(ctx, s.id, i8, idata)
        if info is not None:
            _check_allowlist(ctx, s.id, i8, info, "int8")
            _check_external(ctx, s, i8, info, "int8_external_data")
    if "quant_accuracy_budget_plcc" not in entry:
        ctx.add(s.id, "quant", "quantised entry has no quant_accuracy_budget_plcc", WARNING if ctx.reg.is_legacy else ERROR)
    _check_int8_gate(ctx, s.id, entry)
    if entry.get("quant_mode") == "static" and not entry.get("quant_calibration_set"):
        ctx.add(s.id, "quant", "static quantisation without a quant_calibration_set")


def _check_int8_gate(ctx: Context, eid: str, entry: Entry) -> None:
    """A recorded int8 gate that scoring would refuse (over the entry's budget, edited by hand) is a finding."""
    from registry.errors import UsageError
    from registry.runtime.precision import check_gate, gate_record

    gate = gate_record(entry, "int8")
    if gate is None or gate.get("passed") is not True:
        return  # no record (scoring says so when asked), or an honest failed one
    try:
        check_gate(entry, "int8")
    except UsageError as exc:
        ctx.add(eid, "quant", exc.diagnostics())


@check("fp16", "entry")
def check_fp16(ctx: Context, s: Subject) -> None:
    """The fp16 sibling: pinned with role fp16, its graph on the allowlist, its gate record passed on these files."""
    entry = s.entry
    half = fp16_rel(s.onnx)
    want = entry.get("fp16_sha256")
    if not isinstance(want, str):
        if entry.get("fp16") is not None:
            ctx.add(s.id, "fp16", "an fp16 record but no fp16_sha256")
        return  # a planted, unpinned .fp16.onnx is an unlisted file (reported with the others)
    pin = s.pins.get(half)
    if not ctx.reg.is_legacy and (pin is None or pin.get("role") != "fp16" or pin.get("sha256") != want):
        ctx.add(s.id, "pins", f"files[] does not pin {half} with role fp16 and the entry's fp16_sha256")
    data = ctx.read(s.id, half, "fp16 model", (pin or {}).get("size"))
    if data is not None:
        _check_pin(ctx, s.id, half, data, want, (pin or {}).get("size"), "fp16 model")
        info = s.fp16_info = _parse(ctx, s.id, half, data)
        if info is not None:
            _check_allowlist(ctx, s.id, half, info, "fp16" if "fp16" in ctx.allow.profile_names() else "fp32")
            _check_external(ctx, s, half, info, "fp16_external_data")
    from registry.errors import UsageError
    from registry.runtime.precision import check_gate

    try:
        check_gate(entry, "fp16")
    except UsageError as exc:
        ctx.add(s.id, "fp16", exc.diagnostics())


@check("vmafx-runtime", "entry")
def check_vmafx_runtime(ctx: Context, s: Subject) -> None:
    """In a folder the VMAFx fork consumes: its libvmaf runtime allowlist (the ``vmafx`` profile) accepts the graphs.

    An error for a graph tinyreg built (the entry names a family), a warning for the fork's own models.
    """
    for rel, info in ((s.onnx, s.info), (int8_rel(s.onnx), s.int8_info), (fp16_rel(s.onnx), s.fp16_info)):
        if info is not None:
            _check_vmafx_runtime(ctx, s.id, rel, info, s.entry)


@check("sidecar", "entry")
def check_sidecar(ctx: Context, s: Subject) -> None:
    """The VMAFx sidecar ``<model>.json``: there, pinned, valid, and agreeing with the registry and the graph."""
    _check_sidecar(ctx, s.id, s.entry, s.info)


@check("license", "entry")
def check_license(ctx: Context, s: Subject) -> None:
    """schema_version 1: every entry names its licence."""
    if ctx.reg.schema_version == 1 and not s.entry.get("license"):
        ctx.add(s.id, "license", "schema_version 1 requires a license on every entry")


@check("provenance", "entry")
def check_provenance(ctx: Context, s: Subject) -> None:
    """schema_version 2: a smoke entry names its generator, a real one its exporter (adopted entries excepted)."""
    if ctx.reg.is_legacy:
        return
    prov = s.entry.get("provenance") or {}
    if not is_adopted(s.entry):  # an adopted (migrated) entry's provenance is in its notes and sidecar
        if is_smoke(s.entry) and "generator" not in prov:
            ctx.add(s.id, "smoke", "smoke entry without a generator in its provenance")
        if s.entry.get("smoke") is False and "exporter" not in prov:
            ctx.add(s.id, "smoke", "non-smoke entry without an exporter in its provenance")


@check("card", "entry")
def check_card(ctx: Context, s: Subject) -> None:
    """schema_version 2: the model card (``<id>.md``) is there and up to date with the row."""
    if ctx.reg.is_legacy:
        return
    from registry.store.card import card_state

    try:
        state = card_state(ctx.reg.root, s.entry)
    except Error as exc:
        ctx.add(s.id, "paths", exc.diagnostics())
        state = "ok"
    ctx.claimed.add(card_rel(s.id))
    if state != "ok":
        ctx.add(s.id, "card", f"model card {card_rel(s.id)} is {state} (any command that writes the entry, "
                "e.g. 'tinyreg pin', rewrites it)")


@check("signature", "entry")
def check_signature(ctx: Context, s: Subject) -> None:
    """Without a trust policy: the entry's bundle verifies under the registry's own signing policy (with one, see ``trust``)."""
    if has_signature(s.entry):
        _check_signature(ctx, s.id, s.entry, str(s.entry.get("sigstore_bundle")))


@check("policy", "folder")
def check_policy(ctx: Context) -> None:
    """The files the registry's ``signing`` block names (public key, trusted root) are there, inside the folder."""
    _check_policy(ctx)


@check("unlisted", "folder")
def check_unlisted(ctx: Context) -> None:
    """Every file in the folder (hidden ones and subfolders too) is one the registry expects."""
    _unlisted(ctx)


@check("vmafx-lookups", "folder")
def check_vmafx_lookups(ctx: Context) -> None:
    """In a folder the VMAFx fork consumes: libvmaf's text lookups resolve every entry to its own bundle and sidecar values."""
    _check_vmafx_lookups(ctx)


@check("trust", "folder", guarded=False)
def check_trust(ctx: Context) -> None:
    """Under the consumer's trust policy: the snapshot verifies and every entry carries a valid signature."""
    if ctx.trust is not None:
        _check_trust(ctx, ctx.trust, ctx.now)


@check("journal", "folder", guarded=False)
def check_journal(ctx: Context) -> None:
    """An update journal (``.tinyreg-update/``) a killed writer left, or someone planted: an error; verify never applies it."""
    if ctx.pending_update is not None:
        ctx.add("-", "journal", ctx.pending_update)


def _run(ctx: Context, c: Check, eid: str, *args: Any) -> None:
    ctx.current = c.id
    if c.guarded:
        _guarded(ctx, eid, c.run, ctx, *args)
    else:
        c.run(ctx, *args)


def _subject(entry: Entry) -> Subject | None:
    onnx_rel, eid = entry.get("onnx"), entry.get("id")
    if not isinstance(onnx_rel, str) or not isinstance(eid, str):
        return None  # the schema check already says so
    return Subject(entry, eid, onnx_rel, pinned_files(entry))


def _run_entry(ctx: Context, checks: list[Check], s: Subject) -> None:
    for c in checks:
        ctx.current = c.id
        c.run(ctx, s)


def run_checks(ctx: Context, checks: list[Check] | None = None) -> None:
    """The one loop: registry checks, every entry through the entry checks, then the folder checks.

    An entry's checks share what they learn (the model bytes are read once), so input one of
    them cannot handle ends that entry's checks with one ``input`` finding, as it always has.
    """
    table = CHECKS if checks is None else checks
    for c in table:
        if c.scope == "registry":
            _run(ctx, c, "-")
    per_entry = [c for c in table if c.scope == "entry"]
    if per_entry:
        for entry in ctx.reg.entries:
            s = _subject(entry)
            if s is not None:
                _guarded(ctx, s.id, _run_entry, ctx, per_entry, s)
    for c in table:
        if c.scope == "folder":
            _run(ctx, c, "-")



def verify_registry(
    registry: str | os.PathLike[str] | None = None,
    *,
    allowlist: str | os.PathLike[str] | None = None,
    trust: str | os.PathLike[str] | TrustPolicy | None = None,
    now: datetime | None = None,
) -> Report:
    """Run every check; raises InputError only when the registry itself (or the trust policy) cannot be read.

    ``registry``: a ``registry.json`` or a folder holding one (or ``model/tiny/registry.json``), as the
    CLI's ``--registry`` takes it; None finds it as every command does (``$TINYREG_REGISTRY``, then
    the current folder and its parents).

    ``trust``: the consumer's trust policy file (None: ``$TINYREG_TRUST`` if set). With one,
    every entry and the registry snapshot must verify under it (``_check_trust``).

    Holds the registry's shared lock throughout, so no writer's update is seen half done.
    Changes nothing: a ``.tinyreg-update/`` a killed writer left (or someone planted) is an
    error finding (check ``journal``); only a writer (``tinyreg recover``) deals with it.
    """
    from registry.signing.policy import resolve_trust
    from registry.store.document import find_registry, reading

    path = find_registry(registry)
    policy = resolve_trust(trust)
    if policy is not None:
        from registry.signing.snapshot import require_state_dir

        require_state_dir()
    with reading(path, tolerate_pending=True) as pending_update:  # readers never write: a journal is reported, not applied
        report = verify_unlocked(path, allowlist, policy, now, pending_update)
    return report


def verify_unlocked(
    path: str | os.PathLike[str], allowlist: str | os.PathLike[str] | None = None, policy: TrustPolicy | None = None,
    now: datetime | None = None, pending_update: str | None = None,
) -> Report:
    """The checks alone: no lock taken, no trust policy looked up (``policy`` as given).

    For a folder nobody else can see (a temporary copy a writer checks before it writes);
    everything else goes through :func:`verify_registry`.
    """
    reg = read_registry(path)
    report = Report(str(path), reg.schema_version, len(reg.entries))
    ctx = Context(reg, report, load_allowlist(allowlist))
    ctx.trust = policy
    ctx.now = now
    ctx.pending_update = pending_update
    report.trust = policy.source if policy is not None else None
    run_checks(ctx)
    return report


def _check_trust(ctx: Context, policy: TrustPolicy, now: datetime | None) -> None:
    """Under the consumer's policy: the snapshot verifies and every entry carries a valid signature.

    The registry's own ``signing`` block is never used for the decision; naming another signer is a finding.
    """
    from registry.signing.policy import registry_block_mismatch
    from registry.signing.snapshot import check_registry_snapshot, snapshot_field
    from registry.signing.verify import read_entry_bundle, verify_entry_bundle

    reg = ctx.reg
    snapshot_field(reg.doc, str(reg.path))  # a malformed snapshot (no version) is bad input: exit 2
    mismatch = registry_block_mismatch(reg, policy)
    if mismatch:
        ctx.add("-", "trust", mismatch)
    from registry.signing.policy import policy_inside

    inside = policy_inside(policy, reg.root)
    if inside:
        ctx.add("-", "trust", inside)
    if reg.is_legacy:
        ctx.add("-", "trust", f"a schema_version {reg.schema_version} registry cannot carry signatures; the trust policy refuses it")
        return
    # every bundle is read once: the bytes hashed for the snapshot (or the pull records) are the bytes verified below
    bundles: dict[int, tuple[str, bytes] | SignatureError] = {}  # by position: ids may repeat in a hostile file
    for i, entry in enumerate(reg.entries):
        if isinstance(entry.get("id"), str) and isinstance(entry.get("onnx"), str) and has_signature(entry):
            try:
                bundles[i] = read_entry_bundle(reg, entry)
            except SignatureError as exc:
                bundles[i] = exc
    bundle_digests = {b[0]: sha256_bytes(b[1]).sha256 for b in bundles.values() if isinstance(b, tuple)}
    known = {**ctx.digests, **bundle_digests, REGISTRY_NAME: sha256_bytes(_registry_bytes(reg)).sha256}  # as every check saw
    from registry.distribution.state import check_pulled_entries, is_pulled_folder

    try:
        if is_pulled_folder(reg.root):  # assembled by pull: entry by entry (docs/distribution.md)
            check_pulled_entries(reg, reg.entries, known=bundle_digests, now=now)
        else:
            check_registry_snapshot(reg.root, policy, doc=reg.doc, known=known, now=now)
    except SignatureError as exc:
        ctx.add("-", "snapshot", exc.diagnostics())
    for i, entry in enumerate(reg.entries):
        eid = entry.get("id")
        if not isinstance(eid, str) or not isinstance(entry.get("onnx"), str):
            continue
        if not has_signature(entry):
            ctx.add(eid, "signature", "entry is not signed (the trust policy requires a valid signature on every entry)")
            continue
        try:
            read = bundles[i]
            if isinstance(read, SignatureError):
                raise read
            verify_entry_bundle(reg, entry, read[1], read[0], policy=policy, digests=ctx.digests)
        except SignatureError as exc:
            ctx.add(eid, "signature", exc.diagnostics())


def _guarded(ctx: Context, eid: str, fn: Any, *args: Any) -> None:
    """Run one group of checks; input it cannot handle becomes a finding naming the entry, never an abort."""
    try:
        fn(*args)
    except Error as exc:
        ctx.add(eid, "input", exc.diagnostics())
    except (OSError, ValueError, RecursionError, TypeError, KeyError, AttributeError) as exc:  # a field of the wrong type
        ctx.add(eid, "input", f"cannot check ({type(exc).__name__}: {' '.join(str(exc).split())})")
