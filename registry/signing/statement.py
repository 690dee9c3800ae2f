"""The signed statement of one entry: its whole row and every file that is used, derived, not trusted.

Subjects are the files ``load``, ``score`` and the gate read, derived from the
row and the graphs (fp32 model, the external data its graph names, the int8
sibling when declared or present and its external data, the sidecar, the
calibration set, the gate inputs), never taken from ``files[]``. The predicate
holds the canonical row: every field except the pointer to the entry's own
bundle (``sigstore_bundle`` and the bundle's own pin in ``files[]``), so any
field changed after signing (budget, licence, conventions, provenance, parity,
gate records, smoke flag) is a finding.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry._internal.hashing import sha256_bytes, sha256_file
from registry._internal.jsonio import loads_json
from registry._internal.paths import confine
from registry._internal.safeio import read_raw
from registry.errors import Error, InputError, SignatureError

# the statement format, re-exported for readers of statements outside signing/
from registry.signing._methods import INTOTO_PAYLOAD_TYPE as INTOTO_PAYLOAD_TYPE
from registry.signing._methods import PREDICATE_TYPE as PREDICATE_TYPE
from registry.signing._methods import STATEMENT_TYPE, canonical
from registry.store import layout
from registry.store.document import Entry, Registry
from registry.store.types import declares_int8


def signed_row(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The row as signed: everything except the pointer to its own bundle."""
    row: dict[str, Any] = copy.deepcopy(dict(entry))
    bundle = row.pop("sigstore_bundle", None)
    if isinstance(row.get("files"), list):
        row["files"] = [f for f in row["files"] if not (isinstance(f, dict) and (f.get("role") == "signature" or f.get("path") == bundle))]
    return row


def _graph_files(root: Path, rel: str, role: str, ext_role: str, out: dict[str, tuple[str, str]]) -> None:
    from registry.onnx.inspect import inspect_bytes

    try:
        data = read_raw(confine(root, rel, what=role), "model")
    except FileNotFoundError as exc:
        raise SignatureError(f"{rel} is missing") from exc
    except OSError as exc:
        raise SignatureError(f"{rel}: cannot read ({exc.strerror})") from exc
    out[rel] = (role, sha256_bytes(data).sha256)
    try:
        info = inspect_bytes(data, rel)
    except Error:
        return  # not a graph (any more): its digest differs from the signed one, which is the finding
    folder = str(Path(rel).parent)
    for loc in sorted({e.location for e in info.external}):
        ext_rel = loc if folder == "." else f"{folder}/{loc}"
        _add(root, ext_rel, ext_role, out, required=True)


def _add(root: Path, rel: str, role: str, out: dict[str, tuple[str, str]], *, required: bool) -> None:
    try:
        path = confine(root, rel, what=role)
    except Error as exc:
        raise SignatureError(exc.diagnostics()) from exc
    if not path.exists():
        if required:
            raise SignatureError(f"{role} {rel} is missing")
        return
    try:
        out[rel] = (role, sha256_file(path).sha256)
    except Error as exc:
        raise SignatureError(exc.diagnostics()) from exc


def used_files(reg: Registry, entry: Entry) -> dict[str, tuple[str, str]]:
    """path -> (role, sha256 on disk) of every file the entry's consumers read."""
    root = reg.root
    onnx = str(entry["onnx"])
    out: dict[str, tuple[str, str]] = {}
    _graph_files(root, onnx, "onnx", "external_data", out)
    i8 = layout.int8_rel(onnx)
    declared = declares_int8(entry)
    if declared or (root / i8).exists():
        _graph_files(root, i8, "int8", "int8_external_data", out)
    half = layout.fp16_rel(onnx)
    if isinstance(entry.get("fp16_sha256"), str) or (root / half).exists():
        _graph_files(root, half, "fp16", "fp16_external_data", out)
    _add(root, layout.sidecar_rel(onnx), "sidecar", out, required=False)
    calib = entry.get("quant_calibration_set")
    if isinstance(calib, str):
        _add(root, calib, "calibration", out, required=True)
    _add(root, layout.inputs_rel(onnx), "gate_inputs", out, required=False)
    return out


def build_statement(reg: Registry, entry: Entry) -> bytes:
    """Canonical in-toto statement bytes for ``entry`` as it is on disk now."""
    files = used_files(reg, entry)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": p, "digest": {"sha256": sha}} for p, (_, sha) in sorted(files.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "entry": entry["id"],
            "row": signed_row(entry),
            "files": [{"path": p, "role": role} for p, (role, _) in sorted(files.items())],
        },
    }
    return canonical(statement)


def check_statement(
    reg: Registry, entry: Entry, payload: bytes, rel: str, known: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The signed subjects (path -> sha256); SignatureError unless ``payload`` (verified) signs this row and exactly
    the files it uses, as they are."""
    try:
        st = loads_json(payload, f"{rel}: signed statement")
        ptype = st.get("predicateType")
        pred = st["predicate"]
        subjects = {str(s["name"]): str(s["digest"]["sha256"]) for s in st["subject"]}
        signed_entry = pred.get("entry")
    except (ValueError, KeyError, TypeError, AttributeError, InputError) as exc:
        raise SignatureError(f"{rel}: signed statement is malformed") from exc
    if ptype != PREDICATE_TYPE:
        raise SignatureError(f"{rel}: signed statement is not a tinyreg registry-entry statement ({ptype}; expected {PREDICATE_TYPE})")
    if signed_entry != entry["id"]:
        raise SignatureError(f"bundle {rel} signs entry '{signed_entry}', not '{entry['id']}' (swapped bundle?)")
    row = pred.get("row")
    if not isinstance(row, dict):
        raise SignatureError(f"{rel}: signed statement holds no row")
    now = signed_row(entry)
    problems = []
    changed = sorted(k for k in set(row) | set(now) if (k in row) != (k in now) or row.get(k) != now.get(k))
    if changed:
        problems.append(f"fields changed since signing: {', '.join(changed)}")
    derived = used_files(reg, entry)
    for name, sha in sorted((known or {}).items()):
        if name in derived and derived[name][1] != sha:
            problems.append(f"{name} changed while it was being read")
    missing = sorted(set(derived) - set(subjects))
    if missing:
        problems.append(f"the signature does not cover {', '.join(missing)}")
    gone = sorted(set(subjects) - set(derived))
    if gone:
        problems.append(f"signed but no longer used or missing: {', '.join(gone)}")
    changed_files = sorted(p for p, (_, sha) in derived.items() if p in subjects and subjects[p] != sha)
    if changed_files:
        problems.append(f"{', '.join(changed_files)} changed since it was signed")
    if problems:
        raise SignatureError("; ".join(problems))
    return subjects
