from __future__ import annotations

import shutil
from pathlib import Path

from registry.export.smoke import add_smoke
from registry.store.document import read_registry
from registry.verify import verify_registry

REPO = Path(__file__).resolve().parents[2]


def test_re_adding_identical_placeholder_keeps_derived_state(tmp_path: Path) -> None:
    reg = tmp_path / "tiny" / "registry.json"
    shutil.copytree(REPO / "model" / "tiny", reg.parent, ignore=shutil.ignore_patterns(".*"))
    before = read_registry(reg).get("dists_vgg16")
    add_smoke(reg, "dists")
    after = read_registry(reg).get("dists_vgg16")
    for k in ("int8_sha256", "quant_mode", "quant", "quant_calibration_set", "files"):
        assert after[k] == before[k], k
    assert verify_registry(reg).ok


def test_replaced_artifact_drops_stale_derived_files(tmp_path: Path) -> None:
    reg = tmp_path / "tiny" / "registry.json"
    shutil.copytree(REPO / "model" / "tiny", reg.parent, ignore=shutil.ignore_patterns(".*"))
    e = add_smoke(reg, "dists", opset=18)
    for k in ("int8_sha256", "quant_mode", "quant", "quant_calibration_set"):
        assert k not in e
    assert not (reg.parent / "dists_vgg16.int8.onnx").exists()
    assert not (reg.parent / "dists_vgg16.int8.calib.npy").exists()
    assert (reg.parent / "lpips_vgg16.int8.onnx").exists()  # other entries untouched
    r = verify_registry(reg)
    assert r.ok and not r.findings
