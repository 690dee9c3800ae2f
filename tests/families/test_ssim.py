"""SSIM (weight-free family): parity with skimage on odd sizes, flat images, identical pairs; Y4M luma is the Y plane."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from skimage.metrics import structural_similarity

from registry.export.smoke import add_smoke, smoke_bytes
from registry.families import get_family
from registry.families.ssim import RADIUS, gaussian_taps
from registry.plugin import Sample
from registry.scoring.score import score_videos
from registry.store.document import init_registry

FAM = get_family("ssim")


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a.astype(np.float64), b.astype(np.float64), gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=1.0))


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(smoke_bytes(FAM))


def onnx_ssim(session: ort.InferenceSession, sample: Sample) -> float:
    return float(session.run(None, FAM.feeds(sample))[0])


def test_window_is_scipys() -> None:
    from scipy.ndimage import gaussian_filter1d

    impulse = np.zeros(2 * RADIUS + 1)
    impulse[RADIUS] = 1.0
    assert RADIUS == 5 and np.allclose(gaussian_filter1d(impulse, 1.5, truncate=3.5), gaussian_taps()[::-1], atol=1e-15)


@pytest.mark.parametrize("size", [(11, 11), (12, 17), (33, 47), (97, 131)])
def test_parity_on_odd_sizes(session: ort.InferenceSession, size: tuple[int, int]) -> None:
    for sample in FAM.samples(6, size, 11):
        want = skimage_ssim(FAM.feeds(sample)["ref"][0, 0], FAM.feeds(sample)["dist"][0, 0])
        assert abs(onnx_ssim(session, sample) - want) <= 1e-5, sample.name


@pytest.mark.parametrize("level", [0.0, 0.03, 0.5, 0.97, 1.0])
def test_flat_and_near_flat_images(session: ort.InferenceSession, level: float) -> None:
    rng = np.random.default_rng(int(level * 100))
    flat = np.full((64, 80, 3), level, np.float32)
    cases = [flat * 0.98, np.clip(flat + rng.normal(0, 1e-3, flat.shape), 0, 1), np.clip(flat + 0.01, 0, 1), flat]
    for other in cases:
        s = Sample("flat", {"ref": flat, "dist": other.astype(np.float32)})
        want = skimage_ssim(FAM.feeds(s)["ref"][0, 0], FAM.feeds(s)["dist"][0, 0])
        assert abs(onnx_ssim(session, s) - want) <= 1e-5


def test_identical_pairs_are_exactly_one(session: ort.InferenceSession) -> None:
    for size in ((11, 11), (64, 64), (97, 131)):
        for sample in FAM.samples(8, size, 3):
            same = Sample("same", {"ref": sample.images["ref"], "dist": sample.images["ref"]})
            assert abs(onnx_ssim(session, same) - 1.0) <= 1e-6


def test_luma_is_bt601_of_rgb() -> None:
    rgb = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    y = FAM.feeds(Sample("x", {"ref": rgb, "dist": rgb}))["ref"]
    assert y.shape == (1, 1, 16, 16)
    assert np.allclose(y[0, 0], 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2], atol=1e-6)


def _y4m(path: Path, planes: list[np.ndarray], bits: int) -> None:
    h, w = planes[0].shape
    tag = "C444" if bits == 8 else f"C444p{bits}"
    mid = 128 << (bits - 8)
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 {tag}\n".encode())
        for y in planes:
            fh.write(b"FRAME\n")
            dtype = np.uint8 if bits == 8 else np.dtype("<u2")
            for p in (y, np.full_like(y, mid), np.full_like(y, mid)):
                fh.write(p.astype(dtype).tobytes())


@pytest.mark.parametrize("bits", [8, 10])
def test_y4m_scores_the_y_plane_itself(tmp_path: Path, bits: int) -> None:
    reg = init_registry(tmp_path / "r")
    add_smoke(reg, "ssim")
    rng = np.random.default_rng(bits)
    top = (1 << bits) - 1
    ref = [rng.integers(0, top + 1, (40, 48)) for _ in range(2)]
    dist = [np.clip(r + rng.integers(-top // 20, top // 20 + 1, r.shape), 0, top) for r in ref]
    _y4m(tmp_path / "a.y4m", ref, bits)
    _y4m(tmp_path / "b.y4m", dist, bits)
    res = score_videos("ssim_luma", tmp_path / "a.y4m", tmp_path / "b.y4m", registry=reg)
    want = [skimage_ssim(r / top, d / top) for r, d in zip(ref, dist, strict=True)]
    assert len(res.scores) == 2 and max(abs(a - b) for a, b in zip(res.scores, want, strict=True)) <= 1e-5
