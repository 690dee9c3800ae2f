from __future__ import annotations

import os
import shutil
from pathlib import Path

# Under pytest-xdist every worker shares the cores with the others: one compute thread per worker (onnxruntime
# through TINYREG_THREADS, torch through OMP_NUM_THREADS, read when torch is imported), inherited by the CLI
# processes tests start. Threads spinning on cores another worker needs halved the suite's speed (measured
# on 2 cores). A serial run (PYTEST_PAR=) keeps the library's defaults.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["TINYREG_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"
else:
    os.environ.pop("TINYREG_THREADS", None)

import pytest

from registry.export.smoke import add_smoke
from registry.store.document import init_registry

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"  # vendored, with provenance (fixtures/README.md)
VMAFX = FIXTURES / "vmafx-model-tiny"
SIGSTORE = FIXTURES / "sigstore"


@pytest.fixture(autouse=True)
def _isolated_trust_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's TINYREG_TRUST or TINYREG_REGISTRY or writes their last-seen snapshot state."""
    monkeypatch.delenv("TINYREG_TRUST", raising=False)
    monkeypatch.delenv("TINYREG_REGISTRY", raising=False)
    monkeypatch.setenv("TINYREG_STATE_DIR", str(tmp_path_factory.mktemp("tinyreg-state")))


@pytest.fixture
def reg_path(tmp_path: Path) -> Path:
    """A fresh schema_version 2 registry holding the DISTS smoke entry."""
    path = init_registry(tmp_path / "model" / "tiny")
    add_smoke(path, "dists")
    return path


def require_fixture(folder: Path) -> None:
    """The fixtures are vendored in the repository: a missing one is a broken checkout, never a skip."""
    if not folder.is_dir():
        pytest.fail(f"missing vendored fixture folder {folder}")


@pytest.fixture
def vmafx_copy(tmp_path: Path) -> Path:
    require_fixture(VMAFX)
    dst = tmp_path / "vmafx"
    shutil.copytree(VMAFX, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    return dst / "registry.json"


@pytest.fixture(scope="session")
def fp16_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped registry with a gated fp16 DISTS sibling, made once; copy it before changing it (fp16_reg)."""
    from tests.precision_factory import make_fp16_registry

    return make_fp16_registry(tmp_path_factory.mktemp("fp16-master") / "tiny")


@pytest.fixture
def fp16_reg(fp16_master: Path, tmp_path: Path) -> Path:
    """A private copy of ``fp16_master`` (registry.json path)."""
    from tests.precision_factory import copy_registry

    return copy_registry(fp16_master, tmp_path / "tiny")
