"""Every byte that reaches onnxruntime is pinned; unlisted files are seen; size pins are compared first."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import registry
from registry.errors import IntegrityError
from registry.onnx.allowlist import check_model, load_allowlist
from registry.onnx.inspect import external_tensors, inspect_model, parse_model
from registry.runtime.loader import verified_model_bytes
from registry.store.document import read_registry
from registry.verify import verify_registry
from tests import onnx_factory as f
from tests.factories import add_external_entry

REPO = Path(__file__).resolve().parents[2]
X = np.zeros((1, 4), np.float32)


def run(reg_path: Path, eid: str = "ext") -> np.ndarray:
    sess = registry.load(eid, reg_path)
    out: np.ndarray = sess.run(None, {"x": X})[0]
    return out


@pytest.mark.parametrize("kind", f.EXTERNAL_KINDS)
def test_walk_sees_every_external_tensor(kind: str) -> None:
    m, _ = f.external_model(kind, "w.bin")
    found = external_tensors(m)
    assert found, kind
    info = inspect_model(m)
    assert {r.location for r in info.external} == {"w.bin"}
    assert info.initializer_bytes >= 16


@pytest.mark.parametrize("kind", f.EXTERNAL_KINDS)
def test_external_data_everywhere_is_pinned_inlined_and_checked(reg_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(reg_path.parent)  # onnxruntime would resolve a leftover reference from here
    add_external_entry(reg_path, kind)
    entry = read_registry(reg_path).get("ext")
    pinned = {p["path"]: p["role"] for p in entry["files"]}
    assert pinned.get("ext.weights.bin") == "external_data", pinned
    data = verified_model_bytes(read_registry(reg_path), entry)
    assert external_tensors(parse_model(data, "inlined")) == []
    np.testing.assert_allclose(run(reg_path), f.EXT_VALUE)
    # an attacker edits the data file: load refuses, verify reports it
    blob = reg_path.parent / "ext.weights.bin"
    blob.write_bytes(np.full(blob.stat().st_size // 4, 250.0, np.float32).tobytes())
    with pytest.raises(IntegrityError):
        run(reg_path)
    r = verify_registry(reg_path)
    assert any(x.entry == "ext" and x.check == "pins" and "ext.weights.bin" in x.message for x in r.errors), r.findings


@pytest.mark.parametrize("kind", ["sparse", "constant", "function"])
def test_unpinned_external_reference_is_refused(reg_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry row that pins the model but not its data file (as written by an older tinyreg or by hand)."""
    monkeypatch.chdir(reg_path.parent)
    add_external_entry(reg_path, kind)
    doc = json.loads(reg_path.read_text())
    row = next(m for m in doc["models"] if m["id"] == "ext")
    row["files"] = [p for p in row["files"] if p["path"] != "ext.weights.bin"]
    reg_path.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="not pinned"):
        run(reg_path)
    r = verify_registry(reg_path)
    assert any(x.entry == "ext" and "ext.weights.bin" in x.message and "not pinned" in x.message for x in r.errors)


def test_signed_score_cannot_be_changed_through_an_unpinned_file(reg_path: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack of the issue: a signed model whose Constant lives in a file nobody pinned."""
    from registry.signing.sign import set_policy, sign_entries
    from tests.factories import keypair

    monkeypatch.chdir(reg_path.parent)
    add_external_entry(reg_path, "constant")
    priv, pub = keypair(tmp_path, "k")
    set_policy(reg_path, public_key=pub)
    sign_entries(reg_path, "ext", key=priv)
    before = run(reg_path)
    blob = reg_path.parent / "ext.weights.bin"
    blob.write_bytes(np.full(4, 1000.0, np.float32).tobytes())
    with pytest.raises(IntegrityError):
        after = run(reg_path)
        assert np.array_equal(before, after)  # only reached on a build that loads the edited file


@pytest.mark.parametrize("kind", ["sparse", "constant", "loop", "function"])
def test_allowlist_checks_external_locations_everywhere(tmp_path: Path, kind: str) -> None:
    m, _ = f.external_model(kind, "../../outside.bin")
    bad = [v for v in check_model(inspect_model(m), load_allowlist(), "fp32", model_dir=tmp_path) if v.code == "external_data"]
    assert bad and "not a plain relative path" in bad[0].message


def test_nul_in_external_location_is_a_finding(reg_path: Path) -> None:
    add_external_entry(reg_path, "constant")
    p = reg_path.parent / "ext.onnx"
    m = parse_model(p.read_bytes(), "m")
    for _, t in external_tensors(m):
        for e in t.external_data:
            if e.key == "location":
                e.value = "a\x00b"
    p.write_bytes(m.SerializeToString())
    r = verify_registry(reg_path)
    assert any(x.entry == "ext" and "location" in x.message for x in r.errors), r.findings
    assert any(x.entry == "ext" and x.check == "pins" and "ext.onnx" in x.message for x in r.errors)


@pytest.mark.parametrize("name", ["stray.bin", "weights.npy", ".hidden", "sub/deeper/notes.txt", "README.txt"])
def test_unlisted_is_decided_by_the_expected_set(reg_path: Path, name: str) -> None:
    p = reg_path.parent / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    r = verify_registry(reg_path)
    assert [x.message for x in r.errors if x.check == "unlisted"] == [
        f"{name} is in the registry folder but the registry does not list it"
    ]


def test_unlisted_symlink_and_empty_folder(reg_path: Path, tmp_path: Path) -> None:
    (reg_path.parent / "linked").symlink_to(tmp_path, target_is_directory=True)
    (reg_path.parent / "empty").mkdir()
    msgs = sorted(x.message.split()[0] for x in verify_registry(reg_path).errors if x.check == "unlisted")
    assert msgs == ["empty/", "linked"]


def test_expected_files_lists_derived_names(reg_path: Path) -> None:
    from registry.store.layout import expected_files

    exp = expected_files(read_registry(reg_path))
    assert {"registry.json", "dists_vgg16.onnx", "dists_vgg16.json", "dists_vgg16.md"} <= exp
    assert "dists_vgg16.int8.onnx" not in exp  # not declared: an int8 file lying there would be unlisted


def _limited(gib: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (gib << 30, gib << 30))


@pytest.mark.slow
def test_size_pin_is_compared_before_reading(reg_path: Path) -> None:
    """A 5 GB file under a 92 KB pin: one finding and an IntegrityError, never a 5 GB read (memory capped at 3 GiB)."""
    add_external_entry(reg_path, "constant")
    big = reg_path.parent / "ext.weights.bin"
    with open(big, "r+b") as fh:
        fh.truncate(5 << 30)  # sparse: costs no disk
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "registry", "verify", "--json", "--registry", str(reg_path)],
                       capture_output=True, text=True, env=env, preexec_fn=lambda: _limited(3), timeout=120)
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    assert any("ext.weights.bin" in x["message"] and "size" in x["message"] for x in doc["findings"])
    code = ("import registry, registry.errors, sys\ntry:\n    registry.load('ext', sys.argv[1])\n"
            "except registry.errors.IntegrityError as e:\n    print(e)\n")
    p = subprocess.run([sys.executable, "-c", code, str(reg_path)], capture_output=True, text=True, env=env,
                       preexec_fn=lambda: _limited(3), timeout=120)
    assert p.returncode == 0 and "size 5368709120 != pinned 16" in p.stdout, p.stderr
