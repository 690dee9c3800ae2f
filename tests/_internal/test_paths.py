from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry._internal.paths import confine
from registry.errors import PathEscape


@pytest.mark.parametrize(
    "rel",
    ["../x.onnx", "a/../../x", "/etc/passwd", "a\\b", "", ".", "./a", "a//b", "~/x", "a/./b", "x\x00y"],
)
def test_rejects(tmp_path: Path, rel: str) -> None:
    with pytest.raises(PathEscape):
        confine(tmp_path, rel)


def test_accepts_plain(tmp_path: Path) -> None:
    assert confine(tmp_path, "a/b.onnx") == Path(os.path.realpath(tmp_path)) / "a" / "b.onnx"


def test_symlink_leaving_folder(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret.onnx"
    outside.write_bytes(b"x")
    (root / "link.onnx").symlink_to(outside)
    (root / "dir").symlink_to(tmp_path)
    with pytest.raises(PathEscape, match="outside"):
        confine(root, "link.onnx")
    with pytest.raises(PathEscape, match="outside"):
        confine(root, "dir/secret.onnx")
    (root / "inner.onnx").write_bytes(b"y")
    (root / "ok.onnx").symlink_to(root / "inner.onnx")
    confine(root, "ok.onnx")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab./\\~\x00-_")), max_size=12))
def test_never_escapes(tmp_path_factory: pytest.TempPathFactory, rel: str) -> None:
    root = tmp_path_factory.mktemp("r")
    try:
        p = confine(root, rel)
    except PathEscape:
        return
    real_root = Path(os.path.realpath(root))
    resolved = Path(os.path.realpath(p))
    assert resolved == real_root or real_root in resolved.parents
