"""``tinyreg migrate`` on the real VMAFx registry copy: lossless, atomic, idempotent, then verify/sign/load like any v2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import registry
from registry.errors import IntegrityError
from registry.migrate import MigrationRefused, check_round_trip, migrate_registry
from registry.store.document import read_registry
from registry.verify import verify_registry
from tests.conftest import REPO
from tests.factories import keypair

LEFT_OUT = {  # entry -> files the VMAFx copy lacks (external data as the graph names it)
    "fastdvdnet_pre": ["fastdvdnet_pre.onnx"],
    "transnet_v2": ["transnet_v2.onnx"],
    "smoke_fp16_v0": ["smoke_fp16_v0.json"],
    "vmaf_tiny_v1": ["vmaf_tiny_v1.json"],
    "vmaf_tiny_v1_medium": ["mlp_medium_final.onnx.data", "vmaf_tiny_v1_medium.json"],
}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, cwd=cwd or REPO,
                          env=env, timeout=300)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def test_refuses_with_the_full_list_and_writes_nothing(vmafx_copy: Path) -> None:
    before = snapshot(vmafx_copy.parent)
    p = cli("migrate", "--registry", str(vmafx_copy))
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    for eid, files in LEFT_OUT.items():
        assert eid in p.stderr
        for f in files:
            assert f in p.stderr
    assert "--skip-missing" in p.stderr
    assert snapshot(vmafx_copy.parent) == before
    with pytest.raises(MigrationRefused) as exc:
        migrate_registry(vmafx_copy)
    assert "--" not in str(exc.value)  # the library names no CLI flag
    assert snapshot(vmafx_copy.parent) == before


@pytest.mark.slow
def test_dry_run_text_and_json_write_nothing(vmafx_copy: Path) -> None:
    before = snapshot(vmafx_copy.parent)
    p = cli("migrate", "--registry", str(vmafx_copy), "--dry-run", "--skip-missing")
    assert p.returncode == 0, p.stderr
    assert "would migrate schema_version 1 -> 2" in p.stdout
    assert "nr_metric_v1" in p.stdout and "opset 17 -> 18" in p.stdout
    for eid in LEFT_OUT:
        assert f"left out {eid}" in p.stdout
    j = cli("migrate", "--registry", str(vmafx_copy), "--dry-run", "--skip-missing", "--json")
    assert j.returncode == 0, j.stderr
    doc = json.loads(j.stdout)
    assert doc["dry_run"] and not doc["written"] and sorted(doc["left_out"]) == sorted(LEFT_OUT)
    assert {e["id"]: e["opset_corrected"] for e in doc["entries"]}["nr_metric_v1"] == {"registry": 17, "graph": 18}
    assert doc == json.loads(cli("migrate", "--registry", str(vmafx_copy), "--dry-run", "--skip-missing", "--json").stdout)
    refused = cli("migrate", "--registry", str(vmafx_copy), "--dry-run", "--json")
    assert refused.returncode == 1 and json.loads(refused.stdout)["refused"] is True
    assert snapshot(vmafx_copy.parent) == before


def keeps(new: Any, old: Any) -> bool:
    """``new`` holds everything ``old`` holds (objects may have more keys; everything else is equal)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and keeps(new[k], v) for k, v in old.items())
    return bool(new == old)


@pytest.mark.slow
def test_skip_missing_round_trips_and_verify_is_clean(vmafx_copy: Path) -> None:
    folder = vmafx_copy.parent
    v1 = json.loads(vmafx_copy.read_text())
    files_before = snapshot(folder)
    p = cli("migrate", "--registry", str(vmafx_copy), "--skip-missing")
    assert p.returncode == 0, p.stderr
    for eid in LEFT_OUT:
        assert f"left out {eid}" in p.stdout
    assert "registry.schema.json (the VMAFx gate validates against it): extended" in p.stdout
    v2 = json.loads(vmafx_copy.read_text())
    assert v2["schema_version"] == 2
    # every v1 field of every kept entry is equal; the only change is the opset that was reported
    assert check_round_trip(v1, v2) == []
    assert v2["$schema"] == v1["$schema"]  # top-level fields are kept too
    kept = {e["id"]: e for e in v2["models"]}
    assert set(kept) == {e["id"] for e in v1["models"]} - set(LEFT_OUT)
    for row in v1["models"]:
        if row["id"] in kept:
            for k, v in row.items():
                assert kept[row["id"]][k] == v or (row["id"], k) == ("nr_metric_v1", "opset"), (row["id"], k)
    assert kept["nr_metric_v1"]["opset"] == 18 and v2["migration"]["opset_corrected"] == {"nr_metric_v1": {"registry": 17, "graph": 18}}
    # left-out rows are kept unchanged in the migration record, with what they miss
    left = {r["id"]: r for r in v2["migration"]["left_out"]}
    for eid, files in LEFT_OUT.items():
        row = dict(left[eid])
        assert row.pop("missing") == files
        assert row == next(r for r in v1["models"] if r["id"] == eid)
    # files[]: external data from the graph, int8 siblings, sidecars; io from the graph; a card each
    roles = {e: {f["path"]: f["role"] for f in kept[e]["files"]} for e in kept}
    assert roles["fr_regressor_v1"] == {"fr_regressor_v1.onnx": "onnx", "fr_regressor_v1.onnx.data": "external_data",
                                        "fr_regressor_v1.json": "sidecar"}
    assert "fr_regressor_v2.onnx.data" not in roles["fr_regressor_v2"]  # the graph does not load it (no name guessing)
    assert roles["vmaf_tiny_v3"]["vmaf_tiny_v3.int8.onnx"] == "int8"
    assert kept["vmaf_tiny_v3"]["io"]["inputs"] == [{"name": "features", "dtype": "float32", "shape": ["N", 6]}]
    assert kept["learned_filter_v1"]["io"]["outputs"][0]["shape"] == ["batch", 1, 224, 224]
    for eid in kept:
        assert (folder / f"{eid}.md").is_file()
    # sidecars stay; the one whose opset disagreed with the graph is corrected by that field alone
    after = snapshot(folder)
    for rel, data in files_before.items():
        if rel == "registry.json":
            continue
        if rel == "nr_metric_v1.json":
            assert data.replace(b'"opset": 17', b'"opset": 18') == after[rel]
        elif rel == "registry.schema.json":  # the fork's gate file: every rule kept, version 2 and tinyreg's fields added
            old, ext = json.loads(data), json.loads(after[rel])
            assert ext["properties"]["schema_version"]["enum"] == [0, 1, 2]
            ext["properties"]["schema_version"]["enum"] = [0, 1]
            assert keeps(ext, old)
            assert ext["additionalProperties"] is False and ext["$defs"]["model_entry"]["additionalProperties"] is False
        else:
            assert after[rel] == data, rel
    r = verify_registry(vmafx_copy)
    assert r.ok, [f.message for f in r.errors]
    assert cli("verify", "--registry", str(vmafx_copy)).returncode == 0
    # a second migrate is a no-op
    again = snapshot(folder)
    p2 = cli("migrate", "--registry", str(vmafx_copy))
    assert p2.returncode == 0 and "nothing to do" in p2.stdout
    assert snapshot(folder) == again


def test_changed_bytes_are_never_re_pinned(vmafx_copy: Path) -> None:
    data = vmafx_copy.parent / "fr_regressor_v1.onnx.data"
    onnx = vmafx_copy.parent / "vmaf_tiny_v3.int8.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    before = vmafx_copy.read_bytes()
    with pytest.raises(MigrationRefused, match=r"vmaf_tiny_v3\.int8\.onnx does not match"):
        migrate_registry(vmafx_copy, skip_missing=True)
    assert vmafx_copy.read_bytes() == before
    onnx.write_bytes(onnx.read_bytes()[:-1])
    migrate_registry(vmafx_copy, skip_missing=True)
    # external data is pinned from the bytes found; a later change is an integrity error on load
    data.write_bytes(data.read_bytes()[:-4] + b"\1\2\3\4")
    with pytest.raises(IntegrityError):
        registry.load("fr_regressor_v1", vmafx_copy)
    assert not verify_registry(vmafx_copy).ok


def test_unlisted_files_recorded_at_migration_must_stay_as_they_were(vmafx_copy: Path) -> None:
    migrate_registry(vmafx_copy, skip_missing=True)
    stray = vmafx_copy.parent / "fr_regressor_v2.onnx.data"
    stray.write_bytes(b"swapped")
    errs = [f.message for f in verify_registry(vmafx_copy).errors]
    assert any("fr_regressor_v2.onnx.data" in m and "changed since" in m for m in errs), errs


_KILLER = """
import os, signal, sys
from pathlib import Path
target = int(sys.argv[2])
real = os.replace
count = [0]
def replace(src, dst, *a, **k):
    count[0] += 1
    if count[0] == target:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *a, **k)
os.replace = replace
from registry.migrate import migrate_registry
migrate_registry(Path(sys.argv[1]), skip_missing=True)
print(count[0])  # file replacements the migration made (a run that was not killed)
"""


def _small_v1(vmafx_copy: Path, keep: set[str]) -> None:
    doc = json.loads(vmafx_copy.read_text())
    doc["models"] = [m for m in doc["models"] if m["id"] in keep]
    vmafx_copy.write_text(json.dumps(doc, indent=2))


# killing at every step with --keep repeats the whole migration per step (~20 s): the slow tier
@pytest.mark.parametrize("keep", [pytest.param({"nr_metric_v1", "fr_regressor_v1", "learned_filter_v1", "vmaf_tiny_v1"},
                                               marks=pytest.mark.slow), None])
def test_killed_migrate_leaves_the_v1_registry_intact(vmafx_copy: Path, tmp_path: Path, keep: set[str] | None) -> None:
    """SIGKILL before every file replacement the migration makes (small registry), and at the final one (full registry):
    the next reader finds the v1 registry exactly as it was, or the whole migration, never a mix."""
    import shutil

    from registry.store.commit import recover_folder
    from registry.verify import verify_registry

    if keep is not None:
        _small_v1(vmafx_copy, keep)
    folder = vmafx_copy.parent
    pristine, clean = tmp_path / "pristine", tmp_path / "clean"
    shutil.copytree(folder, pristine)
    shutil.copytree(folder, clean)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(target: Path, n: int) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-c", _KILLER, str(target), str(n)], env=env, capture_output=True, timeout=120)

    undisturbed = run(clean / "registry.json", 0)
    assert undisturbed.returncode == 0, undisturbed.stderr
    n_writes = int(undisturbed.stdout.split()[-1])
    assert n_writes >= 3
    original, migrated = snapshot(pristine), snapshot(clean)
    seen = set()
    for n in range(1, n_writes + 1) if keep is not None else [n_writes]:
        shutil.rmtree(folder)
        shutil.copytree(pristine, folder)
        p = run(vmafx_copy, n)
        assert p.returncode == -signal.SIGKILL, (n, p.returncode, p.stderr[-500:])
        left = snapshot(folder)
        verify_registry(vmafx_copy)  # a reader reports what the killed migration left and changes nothing
        assert snapshot(folder) == left, n
        recover_folder(vmafx_copy)  # the next writer completes or discards it
        now = snapshot(folder)
        assert now in (original, migrated), (n, sorted(k for k in set(now) | set(original) if now.get(k) != original.get(k)))
        seen.add("v1" if now == original else "v2")
    if keep is not None:
        assert seen == {"v1", "v2"}  # killed both before and after the commit point
    # a run that is not killed completes, with the same result as an undisturbed migration
    if read_registry(vmafx_copy).schema_version == 1:
        assert run(vmafx_copy, 0).returncode == 0
    assert vmafx_copy.read_bytes() == (clean / "registry.json").read_bytes()


@pytest.mark.slow
def test_sign_all_and_load_the_migrated_registry(vmafx_copy: Path, tmp_path: Path) -> None:
    migrate_registry(vmafx_copy, skip_missing=True)
    priv, pub = keypair(tmp_path, "k")
    assert cli("trust", "--key", str(pub), "--registry", str(vmafx_copy)).returncode == 0
    # with a policy, a listed bundle that is not there is an error until it is signed
    assert not verify_registry(vmafx_copy).ok
    p = cli("sign", "--all", "--key", str(priv), "--registry", str(vmafx_copy))
    assert p.returncode == 0, p.stderr
    r = verify_registry(vmafx_copy)
    assert r.ok, [f.message for f in r.errors]
    doc = json.loads(vmafx_copy.read_text())
    for e in doc["models"]:
        assert e["sigstore_bundle"] == f"{e['onnx']}.sigstore.json"  # the VMAFx bundle path, unchanged
        assert (vmafx_copy.parent / e["sigstore_bundle"]).is_file()
    # external data (fr_regressor_v1) and int8 siblings load through the signed, pinned path
    sess = registry.load("fr_regressor_v1", vmafx_copy, verify_signature=True)
    out = sess.run(None, {"features": np.array([[0.9, 0.5, 0.75, 0.84, 0.89, 6.4]], np.float32)})[0]
    assert np.isfinite(out).all()
    for eid in ("vmaf_tiny_v3", "vmaf_tiny_v4", "nr_metric_v1", "learned_filter_v1"):
        registry.load(eid, vmafx_copy, int8=True, verify_signature=True)
    # a signed file swapped for another breaks loading
    side = vmafx_copy.parent / "fr_regressor_v1.json"
    side.write_bytes(side.read_bytes() + b" ")
    with pytest.raises(IntegrityError):
        registry.load("fr_regressor_v1", vmafx_copy)


def test_schema_version_0_migrates_and_an_entry_without_licence_is_named(vmafx_copy: Path) -> None:
    doc = json.loads(vmafx_copy.read_text())
    doc["schema_version"] = 0
    del next(m for m in doc["models"] if m["id"] == "vmaf_tiny_v3")["license"]
    vmafx_copy.write_text(json.dumps(doc))
    with pytest.raises(MigrationRefused, match="vmaf_tiny_v3: no license"):
        migrate_registry(vmafx_copy, skip_missing=True)  # a licence is not guessed, and not skippable
    next(m for m in doc["models"] if m["id"] == "vmaf_tiny_v3")["license"] = "BSD-3-Clause-Plus-Patent"
    vmafx_copy.write_text(json.dumps(doc))
    m = migrate_registry(vmafx_copy, skip_missing=True)
    assert m.written and m.from_version == 0
    v2 = json.loads(vmafx_copy.read_text())
    assert v2["migration"]["from_schema_version"] == 0
    assert {e["provenance"]["adopted"]["from_schema_version"] for e in v2["models"]} == {0}
    assert verify_registry(vmafx_copy).ok


@pytest.mark.slow
def test_schema_file_dry_run_unrecognised_and_native(vmafx_copy: Path, reg_path: Path) -> None:
    """The fork's gate file: reported by a dry run without a write, never replaced when it is not the
    VMAFx shape, added to a version 2 folder tinyreg made (then a no-op)."""
    from registry.migrate import migrate_registry

    schema = vmafx_copy.parent / "registry.schema.json"
    before = schema.read_bytes()
    m = migrate_registry(vmafx_copy, dry_run=True, skip_missing=True)
    assert m.schema_file == "extended" and schema.read_bytes() == before
    schema.write_text('{"type": "object"}')
    m = migrate_registry(vmafx_copy, skip_missing=True)
    assert m.written and m.schema_file.startswith("left as is: not the VMAFx schema shape")
    assert schema.read_text() == '{"type": "object"}'
    assert not (reg_path.parent / "registry.schema.json").exists()
    p = cli("migrate", "--registry", str(reg_path))
    assert p.returncode == 0 and "registry.schema.json (the VMAFx gate's) was written" in p.stdout, p.stdout
    ext = json.loads((reg_path.parent / "registry.schema.json").read_text())
    assert ext["properties"]["schema_version"]["enum"] == [0, 1, 2]
    p = cli("migrate", "--registry", str(reg_path))
    assert p.returncode == 0 and "nothing to do" in p.stdout
