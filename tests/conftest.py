from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from registry.export.smoke import add_smoke
from registry.store.document import init_registry

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VMAFX = SHARED / "fixtures" / "vmafx-model-tiny"
SIGSTORE = SHARED / "fixtures" / "sigstore"


@pytest.fixture
def reg_path(tmp_path: Path) -> Path:
    """A fresh schema_version 2 registry holding the DISTS smoke entry."""
    path = init_registry(tmp_path / "model" / "tiny")
    add_smoke(path, "dists")
    return path


def require_fixture(folder: Path) -> None:
    """shared/ lies beside the checkout; in CI its absence is a failure, elsewhere a named skip."""
    if not folder.is_dir():
        msg = f"missing fixture folder {folder} (shared/ is laid beside the checkout)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def vmafx_copy(tmp_path: Path) -> Path:
    require_fixture(VMAFX)
    dst = tmp_path / "vmafx"
    shutil.copytree(VMAFX, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    return dst / "registry.json"
