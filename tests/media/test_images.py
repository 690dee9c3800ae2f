"""Images as bad input: decompression bombs, the pixel cap, the memory estimate, 16-bit samples."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from registry.errors import InputError
from registry.media.images import image_size, read_image
from registry.media.limits import DEFAULT_MAX_PIXELS
from registry.scoring.score import score_images

REPO = Path(__file__).resolve().parents[2]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A valid all-black 8-bit greyscale PNG of width x height, a few hundred KB on disk."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + samples
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))
    return path


def grey16(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr.astype(np.uint16)).save(path)
    return path


@pytest.mark.slow
def test_decompression_bomb_is_one_line_exit_2(reg_path: Path, tmp_path: Path) -> None:
    bomb = bomb_png(tmp_path / "bomb.png", 20000, 10000)  # 200 Mpx, over twice Pillow's own limit
    assert bomb.stat().st_size < 1_000_000
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", str(bomb), str(bomb), "--registry", str(reg_path)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert "bomb.png" in p.stderr and "Mpx" in p.stderr and "--max-pixels" in p.stderr


def test_pixel_cap_and_override(tmp_path: Path) -> None:
    big = bomb_png(tmp_path / "big.png", 2000, 1000)
    with pytest.raises(InputError, match=r"2000x1000 is 2\.0 Mpx, over the cap of 1\.0 Mpx") as err:
        read_image(big, max_pixels=1_000_000)
    assert err.value.hint == "max_pixels" and "--max-pixels" not in str(err.value)  # the CLI adds the flag
    with pytest.raises(InputError, match="over the cap"):
        image_size(big, max_pixels=1_999_999)
    assert image_size(big, max_pixels=2_000_000) == (1000, 2000)
    assert read_image(big, max_pixels=None).shape == (1000, 2000, 3)
    assert read_image(big).shape == (1000, 2000, 3)  # under the default cap
    assert DEFAULT_MAX_PIXELS >= 7680 * 4320


def test_pixel_cap_checked_before_decoding(tmp_path: Path) -> None:
    """A header that claims a huge image over a tiny, broken body is refused on its size, not decoded."""
    p = tmp_path / "liar.png"
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)  # 3.6 Gpx RGB: 10.8 GB if decoded
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + _chunk(b"IEND", b""))
    with pytest.raises(InputError, match="over the cap"):
        read_image(p)


@pytest.mark.slow  # two fresh interpreters (the cap itself: test_pixel_cap_and_override)
def test_cli_max_pixels_option(reg_path: Path, tmp_path: Path) -> None:
    a = bomb_png(tmp_path / "a.png", 64, 48)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "registry", "score", "dists_vgg16", str(a), str(a), "--registry", str(reg_path)]
    p = subprocess.run([*base, "--max-pixels", "3000"], capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "over the cap of 0.0 Mpx" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([*base, "--max-pixels", "3072"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr


def test_memory_estimate_refuses_before_decoding(reg_path: Path, tmp_path: Path) -> None:
    from registry.families import get_family

    a = bomb_png(tmp_path / "a.png", 640, 480)
    need = get_family("dists").score_memory
    assert need is not None
    est = need.estimate(480, 640)
    with pytest.raises(InputError, match=r"scoring images of 640x480 with 'dists_vgg16' needs about .* GiB, over the limit"):
        score_images("dists_vgg16", a, a, registry=reg_path, max_memory=est - 1)
    assert score_images("dists_vgg16", a, a, registry=reg_path, max_memory=est).scores[0] == pytest.approx(0.0, abs=1e-6)


def test_memory_estimate_against_available(reg_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.scoring.memory as memory

    a = bomb_png(tmp_path / "a.png", 64, 64)
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 20)
    with pytest.raises(InputError, match=r"but only 0\.0 GiB is available"):
        score_images("dists_vgg16", a, a, registry=reg_path)


def test_available_memory_is_plausible() -> None:
    from registry.scoring.memory import available_memory, parse_bytes

    avail = available_memory()
    if sys.platform.startswith("linux"):
        assert avail is not None and (1 << 26) < avail < (1 << 50)
    assert parse_bytes("4G") == 4 << 30 and parse_bytes("512M") == 512 << 20 and parse_bytes("1.5GiB") == 3 << 29
    with pytest.raises(Exception, match="not a size"):
        parse_bytes("lots")


def test_sixteen_bit_greyscale_keeps_its_depth(reg_path: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(20000, 45000, (48, 64))
    a = grey16(tmp_path / "a16.png", base)
    b = grey16(tmp_path / "b16.png", np.clip(base + rng.normal(0, 4000, base.shape), 0, 65535))
    x = read_image(a)
    assert x.dtype == np.float32 and x.shape == (48, 64, 3)
    assert np.allclose(x[..., 0], base / 65535.0, atol=1e-6) and np.array_equal(x[..., 0], x[..., 2])
    assert 0.25 < x.max() < 0.75  # not clipped to white
    score = score_images("dists_vgg16", a, b, registry=reg_path).scores[0]
    assert score > 1e-4  # two different 16-bit images do not score 0.0
    t = tmp_path / "a16.tif"
    Image.fromarray(base.astype(np.uint16)).save(t)
    assert np.array_equal(read_image(t), x)


def test_eight_bit_unchanged(tmp_path: Path) -> None:
    arr = np.random.default_rng(1).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    p = tmp_path / "rgb.png"
    Image.fromarray(arr).save(p)
    assert np.array_equal(read_image(p), arr.astype(np.float32) / 255.0)


def test_float_images_refused(tmp_path: Path) -> None:
    p = tmp_path / "f.tif"
    Image.fromarray(np.zeros((20, 20), np.float32)).save(p)
    with pytest.raises(InputError, match="floating-point images are not supported"):
        read_image(p)


def test_natural_images_cache_cannot_be_poisoned() -> None:
    """The decoded images are shared by every caller in the process: read-only for good, and what callers get is theirs."""
    from registry.media.images import NATURAL_IMAGES, _natural_uint8, fr_pairs, natural_image

    for name in NATURAL_IMAGES[:3]:
        cached = _natural_uint8(name)
        with pytest.raises(ValueError):
            cached.flags.writeable = True
        with pytest.raises(ValueError):
            cached[0, 0, 0] = 1
        mine = natural_image(name)
        assert mine.flags.writeable and mine.dtype == np.float32 and not np.shares_memory(mine, cached)
    before = [p.ref.copy() for p in fr_pairs(3, (8, 8), seed=1)]
    for p in fr_pairs(3, (8, 8), seed=1):
        p.ref[:] = 0
        p.dist[:] = 0
    assert all(np.array_equal(a, p.ref) for a, p in zip(before, fr_pairs(3, (8, 8), seed=1), strict=True))


def _fr_pairs_through_float(n: int, size: tuple[int, int], seed: int) -> list[np.ndarray]:
    """The references as fr_pairs made them before it worked in 8 bits: the whole image as float, resize() twice."""
    from registry.media.images import DISTORTIONS, NATURAL_IMAGES, distort, natural_image, resize

    rng = np.random.default_rng(seed)
    h, w = size
    out = []
    for i in range(n):
        img = natural_image(NATURAL_IMAGES[(i + seed) % len(NATURAL_IMAGES)])
        scale = rng.uniform(0.5, 1.0)
        ch, cw = max(h, int(img.shape[0] * scale)), max(w, int(img.shape[1] * scale))
        img_s = resize(img, max(h, img.shape[0]), max(w, img.shape[1])) if ch > img.shape[0] or cw > img.shape[1] else img
        y0 = int(rng.integers(0, img_s.shape[0] - min(ch, img_s.shape[0]) + 1))
        x0 = int(rng.integers(0, img_s.shape[1] - min(cw, img_s.shape[1]) + 1))
        ref = resize(img_s[y0 : y0 + min(ch, img_s.shape[0]), x0 : x0 + min(cw, img_s.shape[1])], h, w)
        level = float(rng.uniform(0.1, 1.0))
        distort(ref, DISTORTIONS[i % len(DISTORTIONS)], level, rng)  # draws from rng as fr_pairs does
        out.append(ref)
    return out


@pytest.mark.parametrize(("n", "size", "seed"), [(14, (1, 1), 0), (5, (2, 3), 7), (4, (40, 56), 3), (3, (600, 700), 5)])
def test_fr_pairs_in_eight_bits_are_the_float_path_pixels(n: int, size: tuple[int, int], seed: int) -> None:
    """Every natural image (14 pairs at 1x1), odd and tiny sizes, and sizes above the sources (the upscale path)."""
    from registry.media.images import fr_pairs

    got = [p.ref for p in fr_pairs(n, size, seed)]
    want = _fr_pairs_through_float(n, size, seed)
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(got, want, strict=True))
