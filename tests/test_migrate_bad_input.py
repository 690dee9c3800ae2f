"""migrate on hostile or inconsistent v1 registries (issue 16 items 1, 2, 5): refuse with the list, write nothing, never hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from registry.errors import Error
from registry.migrate import MigrationRefused, migrate_registry
from registry.verify import verify_registry

REPO = Path(__file__).resolve().parents[1]
KEEP = {"nr_metric_v1", "fr_regressor_v1", "learned_filter_v1"}


def snapshot(folder: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            out[str(p.relative_to(folder))] = "special"
        elif p.is_file():
            out[str(p.relative_to(folder))] = p.read_bytes()
    return out


def small(reg: Path, extra: list[dict[str, object]] | None = None) -> dict[str, object]:
    doc = json.loads(reg.read_text())
    doc["models"] = [m for m in doc["models"] if m["id"] in KEEP] + (extra or [])
    reg.write_text(json.dumps(doc, indent=2))
    return doc


def migrate_cli(reg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry", "migrate", "--registry", str(reg)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_small_registry_still_migrates_and_verifies(vmafx_copy: Path) -> None:
    small(vmafx_copy)
    migrate_registry(vmafx_copy)
    assert verify_registry(vmafx_copy).errors == []


def test_duplicate_ids_refused_with_nothing_written(vmafx_copy: Path) -> None:
    doc = small(vmafx_copy)
    dup = next(m for m in doc["models"] if m["id"] == "fr_regressor_v1")  # type: ignore[index]
    small(vmafx_copy, [dict(dup)])
    before = snapshot(vmafx_copy.parent)
    with pytest.raises(MigrationRefused, match="id 'fr_regressor_v1' is used by 2 entries"):
        migrate_registry(vmafx_copy)
    assert snapshot(vmafx_copy.parent) == before
    p = migrate_cli(vmafx_copy)
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert snapshot(vmafx_copy.parent) == before


def test_model_named_registry_onnx_is_refused(vmafx_copy: Path) -> None:
    doc = small(vmafx_copy)
    src = next(m for m in doc["models"] if m["id"] == "fr_regressor_v1")  # type: ignore[index]
    folder = vmafx_copy.parent
    (folder / "registry.onnx").write_bytes((folder / str(src["onnx"])).read_bytes())
    row = dict(src, id="clash", onnx="registry.onnx")
    row.pop("int8_sha256", None)
    row.pop("quant_mode", None)
    small(vmafx_copy, [row])
    before = snapshot(folder)
    with pytest.raises(Error, match=r"registry\.json is a file of the registry itself"):
        migrate_registry(vmafx_copy)
    assert snapshot(folder) == before


@pytest.mark.slow
def test_fifo_model_or_stray_file_refused_without_hanging(vmafx_copy: Path) -> None:
    small(vmafx_copy)
    folder = vmafx_copy.parent
    os.mkfifo(folder / "stray.fifo")
    before = snapshot(folder)
    p = migrate_cli(vmafx_copy)
    assert p.returncode == 2 and "FIFO" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert snapshot(folder) == before
    (folder / "stray.fifo").unlink()
    model = folder / "fr_regressor_v1.onnx"
    model.unlink()
    os.mkfifo(model)
    p = migrate_cli(vmafx_copy)
    assert p.returncode in (1, 2) and "FIFO" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_huge_sidecar_refused_before_reading(vmafx_copy: Path) -> None:
    small(vmafx_copy)
    side = vmafx_copy.parent / "fr_regressor_v1.json"
    with open(side, "r+b") as fh:
        fh.truncate(8 << 30)  # sparse 8 GiB: read whole, MemoryError (exit 70) before the fix
    p = migrate_cli(vmafx_copy)
    assert p.returncode in (1, 2) and "more than the 16 MiB" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_sidecar_with_a_nested_opset_still_gets_its_top_level_opset_fixed(vmafx_copy: Path) -> None:
    # an export record inside the sidecar repeats "opset": 17; migrate used to edit both, decline the edit and then
    # refuse the whole folder ("sidecar ... opset 17 but the graph imports opset 18")
    small(vmafx_copy)
    side = vmafx_copy.parent / "nr_metric_v1.json"
    text = side.read_text()
    assert '"opset": 17,' in text
    side.write_text('{\n  "export": {"opset": 17, "name": "other", "id": "x"},' + text.lstrip()[1:])
    migrate_registry(vmafx_copy)
    doc = json.loads(side.read_text())
    assert doc["opset"] == 18 and doc["export"] == {"opset": 17, "name": "other", "id": "x"}
    assert verify_registry(vmafx_copy).errors == []
