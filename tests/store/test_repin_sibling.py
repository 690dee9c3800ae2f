"""``tinyreg pin`` after someone swapped the int8 sibling (attack on issue 18's "a sibling scores only behind
its passed gate"): the int8 gate record names no file, so re-pinning used to make any planted graph 'gated'."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from registry.errors import UsageError
from registry.runtime.precision import check_gate
from registry.store.repin import pin
from tests.conftest import REPO


def copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(REPO / "model" / "tiny", tmp_path / "tiny")) / "registry.json"


def dists(reg: Path) -> dict[str, Any]:
    return next(e for e in json.loads(reg.read_text())["models"] if e["id"] == "dists_vgg16")


def test_repinning_a_swapped_int8_sibling_drops_its_gate(tmp_path: Path) -> None:
    reg = copy(tmp_path)
    folder = reg.parent
    (folder / "dists_vgg16.int8.onnx").write_bytes((folder / "dists_vgg16.onnx").read_bytes())  # planted
    changed = pin(reg, "dists_vgg16")
    assert "int8_sha256" in changed["dists_vgg16"] and "quant" in changed["dists_vgg16"]
    entry = dists(reg)
    assert "gate" not in entry["quant"] and entry["quant"]["mode"] == "static"
    with pytest.raises(UsageError, match="int8 sibling has no recorded gate"):
        check_gate(entry, "int8")


def test_repinning_unchanged_files_keeps_the_gate(tmp_path: Path) -> None:
    reg = copy(tmp_path)
    before = reg.read_bytes()
    assert pin(reg, None) == {}
    assert reg.read_bytes() == before
    check_gate(dists(reg), "int8")
