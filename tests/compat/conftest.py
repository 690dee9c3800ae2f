"""Registries the VMAFx consumers are run on: the migrated vendored copy, a signed native one, 64 entries.

Built once per module (the 64-entry one in one transaction); tests that change a folder copy it first.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from registry.export.core import family_fields
from registry.export.smoke import add_smoke, smoke_model
from registry.families import get_family
from registry.migrate import migrate_registry
from registry.signing.sign import sign_entries
from registry.store.document import init_registry, merge_entry, transaction
from registry.store.entries import refresh_entry
from tests.conftest import VMAFX, require_fixture
from tests.factories import keypair

LONG_NOTES = ("x" * 500) + " onnx"  # near the fork's 512-character limit


@pytest.fixture(scope="module")
def migrated_vmafx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The vendored VMAFx copy after ``tinyreg migrate --skip-missing``."""
    require_fixture(VMAFX)
    dst = tmp_path_factory.mktemp("vmafx") / "tiny"
    shutil.copytree(VMAFX, dst)
    migrate_registry(dst / "registry.json", skip_missing=True)
    return dst / "registry.json"


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return keypair(tmp_path_factory.mktemp("keys"), "release")


@pytest.fixture(scope="module")
def signed_native(tmp_path_factory: pytest.TempPathFactory, signing_key: tuple[Path, Path]) -> Path:
    """A registry tinyreg made (every family), made gate-ready by ``migrate``, then signed (the documented order:
    the snapshot covers the gate's schema file too)."""
    path = init_registry(tmp_path_factory.mktemp("native") / "model" / "tiny")
    for fam in ("dists", "lpips", "ssim"):
        add_smoke(path, fam)
    migrate_registry(path)  # already version 2: writes the folder's registry.schema.json
    sign_entries(path, None, key=signing_key[0])
    return path


def add_many(path: Path, n: int, family: str = "ssim", *, notes: str = LONG_NOTES) -> None:
    """``n`` entries of ``family`` in one update, each with its own graph file, sidecar, card and pins."""
    fam = get_family(family)
    data = smoke_model(fam, 17).SerializeToString()
    with transaction(path) as reg:
        for i in range(n):
            eid = f"{family}_{i:02d}"
            fields: dict[str, Any] = {**family_fields(fam, eid, fam.contract.io_json()), "smoke": False,
                                      "notes": notes, "description": "d" * 200,
                                      "provenance": {"exporter": "tests.compat", "tools": {"onnx": "1.0", "numpy": "2"}}}
            reg.stage(str(fields["onnx"]), data)
            merge_entry(reg, fields, force=True)
            refresh_entry(reg, eid)


@pytest.fixture(scope="module")
def big_registry(tmp_path_factory: pytest.TempPathFactory, signing_key: tuple[Path, Path]) -> Path:
    """64 signed entries (the fork's loader comment: "the registry is small (< 64 entries)")."""
    path = init_registry(tmp_path_factory.mktemp("big") / "tiny")
    add_many(path, 64)
    migrate_registry(path)
    sign_entries(path, None, key=signing_key[0])
    return path
