from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from registry.errors import InputError
from registry.export.core import WeightSource, export_entry
from registry.export.parity import parity_reference, run_parity
from registry.families.lpips import FAMILY, LIN
from registry.onnx.inspect import inspect_bytes
from registry.runtime.loader import load
from registry.store.document import init_registry, read_registry
from registry.verify import verify_registry
from tests.dists_fixtures import lin_path, write_random_vgg


def export(reg: Path, vgg: tuple[Path, str]) -> dict[str, object]:
    return export_entry(reg, "lpips", weights=[WeightSource("vgg16", str(vgg[0]), vgg[1]), WeightSource("lin", str(lin_path()))])


@pytest.fixture(scope="module")
def vgg(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    p = tmp_path_factory.mktemp("w") / "vgg16_random.pth"
    return p, write_random_vgg(p, seed=11)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, vgg: tuple[Path, str]) -> Path:
    reg = init_registry(tmp_path_factory.mktemp("reg"))
    export(reg, vgg)
    return reg


def test_lin_pin_matches_installed_package() -> None:
    assert hashlib.sha256(lin_path().read_bytes()).hexdigest() == LIN.sha256


@pytest.mark.slow
def test_entry_and_graph(exported: Path) -> None:
    e = read_registry(exported).get("lpips_vgg16")
    assert e["smoke"] is False and e["opset"] == 17 and e["license"] == "BSD-2-Clause"
    assert e["provenance"]["upstream"][1] == {**e["provenance"]["upstream"][1], "key": "lin", "official": True}
    info = inspect_bytes((exported.parent / e["onnx"]).read_bytes(), "x")
    assert info.io_json() == FAMILY.contract.io_json() and info.op_set() == set(FAMILY.ops)
    assert verify_registry(exported).ok


def test_reproducible(tmp_path: Path, exported: Path, vgg: tuple[Path, str]) -> None:
    e = export(init_registry(tmp_path / "o"), vgg)
    assert e["sha256"] == read_registry(exported).get("lpips_vgg16")["sha256"]


@pytest.mark.slow  # a parity run of the reference (~10 s)
def test_parity_detects_other_weights(exported: Path, vgg: tuple[Path, str], tmp_path: Path) -> None:
    """A graph built from other backbone weights fails the same check (the check can fail)."""
    other = tmp_path / "other.pth"
    sha = write_random_vgg(other, seed=12)
    reg = init_registry(tmp_path / "r")
    export(reg, (other, sha))
    entry = read_registry(exported).get("lpips_vgg16")
    reference = parity_reference(entry, FAMILY, [WeightSource("vgg16", str(vgg[0])), WeightSource("lin", str(lin_path()))])
    res = run_parity(load("lpips_vgg16", reg), entry, FAMILY, reference, pairs=3, sizes=[(48, 48)])
    assert not res.passed and res.max_abs_diff > 1e-5
    assert "lpips.LPIPS" in res.reference


def test_strict_lin_keys(tmp_path: Path, vgg: tuple[Path, str]) -> None:
    bad = tmp_path / "lin.pth"
    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, bad)
    with pytest.raises(InputError, match="expected exactly"):
        FAMILY.build({"vgg16": vgg[0].read_bytes(), "lin": bad.read_bytes()}, 17)
