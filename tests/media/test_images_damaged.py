"""Damaged images are one line, exit 2 (found by the fuzz harness: SyntaxError/TypeError escaped, Pillow warnings added lines)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from registry.errors import InputError
from registry.media.images import read_image

REPO = Path(__file__).resolve().parents[2]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((20, 24, 3)) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_broken_png_chunk_is_bad_input(tmp_path: Path) -> None:
    data = bytearray(_png())
    i = data.find(b"IDAT")
    data[i:i + 4] = b"\x0c\x0c\x10\x10"  # an invalid chunk type: PIL raises SyntaxError("broken PNG file")
    p = tmp_path / "b.png"
    p.write_bytes(bytes(data))
    with pytest.raises(InputError, match="not a readable image"):
        read_image(p)


def test_tiff_with_tags_past_the_end_is_one_line(tmp_path: Path, reg_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buf, "TIFF")
    data = buf.getvalue()
    bad = tmp_path / "t.tif"
    bad.write_bytes(data[: len(data) // 3])  # tags now point past the end: Pillow warns, then fails
    p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", str(bad), str(bad), "--registry", str(reg_path)],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr


def _tiff_with_compression(code: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(buf, "TIFF")  # 8 bits a sample, uncompressed
    data = buf.getvalue()
    entry = b"\x03\x01\x03\x00\x01\x00\x00\x00\x01\x00"  # tag 259 (Compression), SHORT, 1 value: 1 (none)
    assert data.count(entry) == 1
    return data.replace(entry, entry[:8] + code.to_bytes(2, "little"))


def test_libtiff_complaints_on_fd2_do_not_add_lines(tmp_path: Path, reg_path: Path) -> None:
    """Found by the fuzz harness (which captures file descriptor 2): libtiff prints "Fax3SetupState: Bits/sample must be 1"
    itself before Pillow raises, a second stderr line."""
    bad = tmp_path / "fax.tif"
    bad.write_bytes(_tiff_with_compression(4))  # CCITT group 4 on 8-bit samples
    p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", str(bad), str(bad), "--registry", str(reg_path)],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 2 and "Fax3" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
