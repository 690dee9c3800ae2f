"""Write a small reference/distorted pair of images and of videos to try tinyreg on.

    python examples/make_media.py [FOLDER]     # default: the current folder

Writes ``ref.png``, ``dist.png`` (the reference after JPEG at quality 20), ``ref.y4m`` (24 frames
of 160x120 moving gratings, 4:2:0) and the distorted video: ``dist.mp4`` (H.264, blurred and
noisy) when PyAV is installed (``pip install 'tinyreg[video]'``), else ``dist.y4m``. Needs only
numpy and Pillow, which every tinyreg install has. The same bytes on every run (the mp4: for
a given PyAV build).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

W, H, FRAMES = 160, 120, 24


def frame(t: int) -> np.ndarray:
    """HxWx3 uint8: two moving gratings and a drifting disc."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    r = 0.5 + 0.5 * np.sin(2 * np.pi * (x / 23.0 + t / 24.0))
    g = 0.5 + 0.5 * np.sin(2 * np.pi * (y / 17.0 - t / 30.0) + x / 40.0)
    b = 0.5 + 0.5 * np.cos(2 * np.pi * (x + y) / 51.0)
    disc = ((x - (30 + 4 * t)) ** 2 + (y - 60) ** 2) < 18**2
    rgb = np.stack([r, g, b], axis=-1)
    rgb[disc] = (0.9, 0.85, 0.2)
    return (rgb * 255).round().astype(np.uint8)


def degrade(rgb: np.ndarray, seed: int) -> np.ndarray:
    im = Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(1.2))
    noisy = np.asarray(im, dtype=np.float32) + np.random.default_rng(seed).normal(0, 6, rgb.shape)
    return noisy.clip(0, 255).round().astype(np.uint8)


def yuv420(rgb: np.ndarray) -> bytes:
    """BT.601 limited range, chroma by 2x2 means: the planes of one Y4M frame."""
    f = rgb.astype(np.float32) / 255.0
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 16 + 219 * (0.299 * r + 0.587 * g + 0.114 * b)
    u = 128 + 224 * (-0.168736 * r - 0.331264 * g + 0.5 * b)
    v = 128 + 224 * (0.5 * r - 0.418688 * g - 0.081312 * b)

    def sub(p: np.ndarray) -> np.ndarray:
        return p.reshape(H // 2, 2, W // 2, 2).mean(axis=(1, 3))

    return b"".join(np.clip(p, 0, 255).round().astype(np.uint8).tobytes() for p in (y, sub(u), sub(v)))


def write_y4m(path: Path, frames: list[np.ndarray]) -> None:
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{W} H{H} F24:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            fh.write(b"FRAME\n" + yuv420(rgb))


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ref = frame(0)
    Image.fromarray(ref).save(folder / "ref.png")
    buf = io.BytesIO()
    Image.fromarray(ref).save(buf, "JPEG", quality=20)
    Image.open(buf).convert("RGB").save(folder / "dist.png")
    frames = [frame(t) for t in range(FRAMES)]
    write_y4m(folder / "ref.y4m", frames)
    dist = [degrade(f, t) for t, f in enumerate(frames)]
    try:
        import av
    except ImportError:
        write_y4m(folder / "dist.y4m", dist)
        print(f"wrote ref.png dist.png ref.y4m dist.y4m in {folder} (PyAV not installed: no mp4)")
        return
    with av.open(str(folder / "dist.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=24, options={"crf": "30", "preset": "medium"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for rgb in dist:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))
    print(f"wrote ref.png dist.png ref.y4m dist.mp4 in {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
