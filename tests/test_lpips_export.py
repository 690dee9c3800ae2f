from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from registry.errors import InputError
from registry.export.parity import run_parity
from registry.families.lpips import FAMILY, LIN
from registry.families.lpips.export import export, load_weights
from registry.families.lpips.parity import reference_for_entry
from registry.onnx.inspect import inspect_bytes
from registry.runtime.loader import load
from registry.store.document import init_registry, read_registry
from registry.verify import verify_registry
from tests.dists_fixtures import write_random_vgg


def lin_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("lpips")
    assert spec is not None and spec.submodule_search_locations, "lpips==0.1.4 is installed by make install (--no-deps)"
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / "vgg.pth"


@pytest.fixture(scope="module")
def vgg(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    p = tmp_path_factory.mktemp("w") / "vgg16_random.pth"
    return p, write_random_vgg(p, seed=11)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, vgg: tuple[Path, str]) -> Path:
    reg = init_registry(tmp_path_factory.mktemp("reg"))
    export(reg, vgg16=str(vgg[0]), vgg16_sha256=vgg[1], lin=str(lin_path()), progress=False)
    return reg


def test_lin_pin_matches_installed_package() -> None:
    assert hashlib.sha256(lin_path().read_bytes()).hexdigest() == LIN.sha256


def test_entry_and_graph(exported: Path) -> None:
    e = read_registry(exported).get("lpips_vgg16")
    assert e["smoke"] is False and e["opset"] == 17 and e["license"] == "BSD-2-Clause"
    assert e["provenance"]["upstream"][1]["official"] is True
    info = inspect_bytes((exported.parent / e["onnx"]).read_bytes(), "x")
    assert info.io_json() == FAMILY.io and info.op_set() == set(FAMILY.ops)
    assert verify_registry(exported).ok


def test_reproducible(tmp_path: Path, exported: Path, vgg: tuple[Path, str]) -> None:
    other = init_registry(tmp_path / "o")
    e = export(other, vgg16=str(vgg[0]), vgg16_sha256=vgg[1], lin=str(lin_path()), progress=False)
    assert e["sha256"] == read_registry(exported).get("lpips_vgg16")["sha256"]


def test_parity_with_lpips_package(exported: Path, vgg: tuple[Path, str]) -> None:
    entry = read_registry(exported).get("lpips_vgg16")
    scorer, name = reference_for_entry(entry, vgg16=str(vgg[0]), lin=str(lin_path()))
    res = run_parity(load("lpips_vgg16", exported), entry, scorer, name, pairs=5, sizes=[(64, 64), (37, 53)])
    assert res.passed and res.max_abs_diff <= 1e-5 and res.identical_max_abs <= 1e-6, res
    assert "lpips.LPIPS" in res.reference


def test_parity_detects_other_weights(exported: Path, vgg: tuple[Path, str], tmp_path: Path) -> None:
    """A graph built from other backbone weights fails the same check (the check can fail)."""
    other = tmp_path / "other.pth"
    sha = write_random_vgg(other, seed=12)
    reg = init_registry(tmp_path / "r")
    export(reg, vgg16=str(other), vgg16_sha256=sha, lin=str(lin_path()), progress=False)
    entry = read_registry(exported).get("lpips_vgg16")
    scorer, name = reference_for_entry(entry, vgg16=str(vgg[0]), lin=str(lin_path()))
    res = run_parity(load("lpips_vgg16", reg), entry, scorer, name, pairs=3, sizes=[(48, 48)])
    assert not res.passed and res.max_abs_diff > 1e-5


def test_strict_lin_keys(tmp_path: Path, vgg: tuple[Path, str]) -> None:
    bad = tmp_path / "lin.pth"
    torch.save({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, bad)
    with pytest.raises(InputError, match="expected exactly"):
        load_weights(str(vgg[0]), vgg[1], str(bad), hashlib.sha256(bad.read_bytes()).hexdigest(), progress=False)
