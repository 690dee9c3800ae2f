"""The conformance suite runs over every installed family (``tinyreg.families`` entry points).

A family with weight files needs test weights here (random backbones with the real small
weight files the reference packages ship): trained upstream weights cannot be fetched in CI.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from registry.export.core import WeightSource, export_entry
from registry.families import family_names, get_family
from registry.store.document import init_registry


def _vgg_random(folder: Path, seed: int) -> WeightSource:
    from tests.dists_fixtures import write_random_vgg

    p = folder / f"vgg16_random_{seed}.pth"
    return WeightSource("vgg16", str(p), write_random_vgg(p, seed=seed))


def _dists(folder: Path) -> list[WeightSource]:
    from tests.dists_fixtures import alpha_beta_path

    return [_vgg_random(folder, 7), WeightSource("alpha_beta", str(alpha_beta_path()))]


def _lpips(folder: Path) -> list[WeightSource]:
    from tests.dists_fixtures import lin_path

    return [_vgg_random(folder, 11), WeightSource("lin", str(lin_path()))]


TEST_WEIGHTS: dict[str, Callable[[Path], list[WeightSource]]] = {"dists": _dists, "lpips": _lpips}
# the parity run per family: (samples per size, sizes); odd sizes on purpose
PARITY_RUN: dict[str, tuple[int, list[tuple[int, int]]]] = {
    "dists": (2, [(48, 48), (37, 53)]),
    "lpips": (2, [(48, 48), (37, 53)]),
}


def weights_for(name: str, folder: Path) -> list[WeightSource]:
    fam = get_family(name)
    if not fam.weights:
        return []
    if name not in TEST_WEIGHTS:
        pytest.fail(f"family '{name}' has weight files but tests/families/conftest.py has no test weights for it")
    return TEST_WEIGHTS[name](folder)


@pytest.fixture(params=family_names(), scope="module")
def family_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def exported(family_name: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[WeightSource]]:
    """(registry path, entry id, the weights it was built from): the family's real entry, exported by the core."""
    folder = tmp_path_factory.mktemp(f"{family_name}-weights")
    weights = weights_for(family_name, folder)
    reg = init_registry(tmp_path_factory.mktemp(f"{family_name}-registry"))
    entry = export_entry(reg, family_name, weights=weights)
    return reg, str(entry["id"]), weights
