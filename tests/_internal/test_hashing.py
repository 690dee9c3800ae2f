from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry._internal.hashing import read_pinned, sha256_bytes, sha256_file
from registry.errors import InputError, IntegrityError


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=70000))
def test_stream_hash_matches_hashlib(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    p = tmp_path_factory.mktemp("h") / "f.bin"
    p.write_bytes(data)
    d = sha256_file(p)
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    assert d.size == len(data)
    assert sha256_bytes(data) == d


def test_multi_chunk_file(tmp_path: Path) -> None:
    data = bytes(range(256)) * 20000  # > 1 MiB chunks
    p = tmp_path / "big"
    p.write_bytes(data)
    assert sha256_file(p).sha256 == hashlib.sha256(data).hexdigest()


def test_read_pinned_returns_hashed_bytes_or_refuses(tmp_path: Path) -> None:
    p = tmp_path / "m.onnx"
    p.write_bytes(b"abc")
    good = hashlib.sha256(b"abc").hexdigest()
    assert read_pinned(p, good, 3) == b"abc"
    with pytest.raises(IntegrityError, match="sha256"):
        read_pinned(p, "0" * 64)
    with pytest.raises(IntegrityError, match="size"):
        read_pinned(p, good, 4)
    with pytest.raises(IntegrityError, match="missing"):
        read_pinned(tmp_path / "nope", good)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        sha256_file(tmp_path / "x")
    with pytest.raises(InputError, match="directory"):
        sha256_file(tmp_path)
