"""A future contributor (or a hostile pull request) against the fork's text scans.

New fields in rows and sidecars, ids and notes that are or contain "onnx", quotes, unicode, many
entries: every lookup must still resolve each entry to its own bundle and sidecar values. And the
guard itself must fail where the scans would (it is not vacuous).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.signing.sign import sign_entries
from registry.store.document import REGISTRY_LEADING_KEYS, dumps_registry, ordered, transaction
from registry.store.layout import sidecar_rel
from registry.store.vmafx_scan import ScanError, bundle_for, sidecar_reads
from tests.compat.conftest import add_many
from tests.compat.vmafx import LoaderError, find_bundle, gate, loader_problems, sidecar_fields

TRICKY = ["onnx", 'he said "onnx', "sigstore_bundle", 'x "sigstore_bundle', "\\", '"', "é — 日本 🎞", "onnx\"", ":", ""]


def _copy(src: Path, tmp: Path) -> Path:
    dst = tmp / "tiny"
    shutil.copytree(src.parent, dst)
    return dst / "registry.json"


def test_new_fields_anywhere_in_rows(signed_native: Path, tmp_path: Path, signing_key: tuple[Path, Path]) -> None:
    """Fields a later tinyreg (or a team) adds, with "onnx"/"sigstore_bundle" as keys and values, numbers after them."""
    path = _copy(signed_native, tmp_path)
    with transaction(path) as reg:
        for i, e in enumerate(reg.entries):
            e["x_toolchain"] = {"onnx": 1, "onnxruntime": {"onnx": None}, "sigstore_bundle": 2}
            e["x_formats"] = ["onnx", "sigstore_bundle", 3]
            e["a_first"] = {"onnx": [i]}  # sorts before everything
            e["notes"] = TRICKY[i % len(TRICKY)]
    sign_entries(path, None, key=signing_key[0])
    assert loader_problems(path) == []
    # without the defined order and escaping (plain sorted JSON) the same rows break the lookups: the guard says so
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))
    assert any("EBADMSG" in p or "gives None" in p for p in loader_problems(path))


def test_tricky_ids_and_notes(reg_path: Path, signing_key: tuple[Path, Path]) -> None:
    """Entry ids "onnx", "onnx_model", "sigstore_bundle"; notes and descriptions from TRICKY; unicode; quotes."""
    add_many(reg_path, 3, notes="onnx")
    with transaction(reg_path) as reg:
        for e in reg.entries:
            e["description"] = 'a "sigstore_bundle'
    from registry.export.smoke import add_smoke

    for eid in ("onnx", "onnx_model", "sigstore_bundle"):
        add_smoke(reg_path, "ssim", entry_id=eid)
    with transaction(reg_path) as reg:
        for i, e in enumerate(reg.entries):
            e["notes"] = TRICKY[i % len(TRICKY)]
            e["license_notes"] = TRICKY[(i + 1) % len(TRICKY)]
    sign_entries(reg_path, None, key=signing_key[0])
    # and one unsigned entry among them: its lookup must find nothing, not a neighbour's bundle
    with transaction(reg_path) as reg:
        reg.get("onnx_model").pop("sigstore_bundle")
        reg.get("onnx_model")["files"] = [f for f in reg.get("onnx_model")["files"] if f["role"] != "signature"]
    assert loader_problems(reg_path) == []
    text = reg_path.read_bytes()
    try:
        find_bundle(text, "onnx_model.onnx")
        raise AssertionError("an unsigned entry resolved to a bundle")
    except LoaderError as exc:
        assert str(exc) == "ENOENT"
    from registry.migrate import migrate_registry

    migrate_registry(reg_path)
    rc, errors = gate(reg_path)
    assert rc == 0, errors


def test_unicode_model_file_names_are_refused_by_the_fork_gate(migrated_vmafx: Path, tmp_path: Path) -> None:
    """libvmaf compares raw bytes with an ASCII-escaped name: the fork's pattern keeps file names lowercase ASCII."""
    path = _copy(migrated_vmafx, tmp_path)
    doc = json.loads(path.read_text())
    doc["models"][0]["onnx"] = "modèle.onnx"
    path.write_text(json.dumps(doc))
    rc, errors = gate(path)
    assert rc == 1 and any("does not match" in e for e in errors)


def test_new_sidecar_fields_cannot_shadow_the_fork_fields(signed_native: Path, tmp_path: Path) -> None:
    """A nested "name"/"kind"/"onnx_opset" later in a sidecar is never what libvmaf reads; the guard fails when the
    top-level key is missing and a nested one would be read instead."""
    path = _copy(signed_native, tmp_path)
    side = path.parent / sidecar_rel(json.loads(path.read_text())["models"][0]["onnx"])
    doc = json.loads(side.read_text())
    doc["x_extra"] = {"name": "impostor", "kind": "nr", "onnx_opset": 99, "quant_mode": "dynamic"}
    side.write_text(json.dumps(ordered(doc, ("name", "kind", "input_name", "output_name", "onnx_opset", "quant_mode")),
                               indent=2))
    assert loader_problems(path) == []
    del doc["onnx_opset"]
    side.write_text(json.dumps(ordered(doc, ("name", "kind")), indent=2))
    assert any("onnx_opset reads 99" in p for p in loader_problems(path))


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(TRICKY), st.text(max_size=12))
_key = st.one_of(st.sampled_from(["onnx", "sigstore_bundle", "id", "notes", "role", "a", "z"]), st.text(max_size=8))
_value = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_key, inner, max_size=3)),
                      max_leaves=12)


@st.composite
def _docs(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 5))
    models = []
    for i in range(n):
        row = draw(st.dictionaries(_key.filter(lambda k: k not in REGISTRY_LEADING_KEYS), _value, max_size=4))
        row.update(id=f"m{i}", onnx=f"m{i}.onnx")
        if draw(st.booleans()):
            row["sigstore_bundle"] = f"m{i}.onnx.sigstore.json"
        models.append(row)
    extra = draw(st.dictionaries(_key.filter(lambda k: k != "models"), _value, max_size=2))
    return {**extra, "models": models}


@settings(max_examples=60, deadline=None)
@given(_docs())
def test_serialiser_keeps_the_document_and_the_lookups(doc: dict[str, Any]) -> None:
    out = dumps_registry(doc)
    assert json.loads(out) == json.loads(json.dumps(doc))  # the same document
    assert dumps_registry(json.loads(out)) == out  # a fixed point
    rows = doc["models"]
    assert out.count(b'"onnx"') == len(rows)  # the raw needle only at each row's own key
    assert out.count(b'"sigstore_bundle"') == sum("sigstore_bundle" in r for r in rows)
    for r in rows:
        try:
            got: str | None = find_bundle(out, r["onnx"])
        except LoaderError as exc:
            got = None if str(exc) == "ENOENT" else str(exc)
        assert got == r.get("sigstore_bundle")
        assert bundle_for(out, r["onnx"]) == got  # verify's scan agrees with this model of libvmaf


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["m0.onnx", "onnx", "a"]))
def test_verify_scan_agrees_with_the_model_on_any_text(text: bytes, name: str) -> None:
    """registry/store/vmafx_scan.py (verify's) and tests/compat/vmafx.py (this suite's) read any bytes alike."""
    text = text + b'"onnx": "m0.onnx", "sigstore_bundle": "b"' if len(text) % 2 else text
    try:
        want: str | None = find_bundle(text, name)
    except LoaderError as exc:
        want = None if str(exc) == "ENOENT" else str(exc)
    try:
        got: str | None = bundle_for(text, name)
    except ScanError as exc:
        got = str(exc)
    assert got == want
    assert sidecar_reads(text) == sidecar_fields(text)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", max_size=10), st.one_of(
    st.integers(), st.text(alphabet="abc xyz_-.", max_size=10), st.lists(st.integers(), max_size=3)), max_size=6))
def test_serialiser_is_plain_json_without_the_needles(row: dict[str, Any]) -> None:
    doc = {"schema_version": 2, "models": [{"id": "a", **row}]}
    if any(k in ("onnx", "sigstore_bundle") for k in row) or any(v in ("onnx", "sigstore_bundle") for v in row.values()):
        return
    want = (json.dumps(ordered(doc, REGISTRY_LEADING_KEYS), indent=2, ensure_ascii=True) + "\n").encode()
    assert dumps_registry(doc) == want
