"""Files staged from disk (``Registry.stage_file``): streamed in by the commit, refused when they changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from registry.errors import IntegrityError
from registry.store.document import read_registry, transaction
from registry.store.layout import STAGING_DIR


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_staged_file_lands_with_the_update(reg_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(b"x" * (3 << 20))
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    with transaction(reg_path) as reg:
        reg.stage_file("extra/big.bin", src, sha, 3 << 20)
        assert reg.exists("extra/big.bin") and reg.digest("extra/big.bin").sha256 == sha
        assert reg.read_bytes("extra/big.bin") == src.read_bytes()
        reg.doc["models"][0]["notes"] = "with a big file"
    assert (reg_path.parent / "extra" / "big.bin").read_bytes() == src.read_bytes()
    assert read_registry(reg_path).entries[0]["notes"] == "with a big file"
    assert not (reg_path.parent / STAGING_DIR).exists()


def test_source_changed_after_staging_writes_nothing(reg_path: Path, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(b"x" * 1000)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    before = _snapshot(reg_path.parent)
    with pytest.raises(IntegrityError, match="changed after it was checked"), transaction(reg_path) as reg:
        reg.stage_file("big.bin", src, sha, 1000)
        reg.doc["models"][0]["notes"] = "changed"
        src.write_bytes(b"y" * 1000)  # swapped between the check and the commit
    assert _snapshot(reg_path.parent) == before
    assert not (reg_path.parent / STAGING_DIR).exists()
