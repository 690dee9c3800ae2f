"""Small videos made in the test itself: the same Y'CbCr planes encoded with PyAV and written as Y4M."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# pix_fmt -> (chroma subsampling x, y, bits, Y4M colourspace tag)
FORMATS = {
    "yuv420p": (2, 2, 8, "C420jpeg"),
    "yuv422p": (2, 1, 8, "C422"),
    "yuv444p": (1, 1, 8, "C444"),
    "yuv420p10le": (2, 2, 10, "C420p10"),
    "yuv422p10le": (2, 1, 10, "C422p10"),
}


def yuv_frames(n: int, w: int, h: int, pix_fmt: str, seed: int = 0, full_range: bool = False) -> list[list[np.ndarray]]:
    """``n`` frames of smooth, moving content with noise, as [Y, Cb, Cr] code-value planes."""
    sx, sy, bits, _ = FORMATS[pix_fmt]
    rng = np.random.default_rng(seed)
    top = (1 << bits) - 1
    lo, hi = (0, top) if full_range else (16 << (bits - 8), 235 << (bits - 8))
    clo, chi = (0, top) if full_range else (16 << (bits - 8), 240 << (bits - 8))
    dtype = np.uint8 if bits == 8 else np.uint16
    cw, ch = -(-w // sx), -(-h // sy)
    out = []
    yy, xx = np.mgrid[0:h, 0:w]
    cyy, cxx = np.mgrid[0:ch, 0:cw]
    for i in range(n):
        y = lo + (hi - lo) * (0.5 + 0.4 * np.sin((xx + 3 * i) / 5.0) * np.cos(yy / 7.0)) + rng.normal(0, 0.02 * (hi - lo), (h, w))
        cb = (clo + chi) / 2 + (chi - clo) * 0.3 * np.sin((cxx - 2 * i) / 4.0) + rng.normal(0, 0.02 * (chi - clo), (ch, cw))
        cr = (clo + chi) / 2 + (chi - clo) * 0.3 * np.cos((cyy + i) / 3.0) + rng.normal(0, 0.02 * (chi - clo), (ch, cw))
        out.append([np.clip(np.rint(p), lo if k == 0 else clo, hi if k == 0 else chi).astype(dtype)
                    for k, p in enumerate((y, cb, cr))])
    return out


def write_y4m_planes(path: Path, frames: list[list[np.ndarray]], pix_fmt: str, full_range: bool = False) -> None:
    h, w = frames[0][0].shape
    tag = FORMATS[pix_fmt][3]
    rng = " XCOLORRANGE=FULL" if full_range else ""
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 {tag}{rng}\n".encode())
        for planes in frames:
            fh.write(b"FRAME\n")
            for p in planes:
                fh.write(p.astype(p.dtype.newbyteorder("<")).tobytes())


def encode(path: Path, frames: list[list[np.ndarray]], pix_fmt: str, codec: str = "ffv1", *,
           colorspace: int | None = None, full_range: bool = False, options: dict[str, str] | None = None) -> None:
    """Encode the planes with PyAV (``colorspace``: an AVColorSpace number, e.g. 1 = BT.709, 6 = BT.601)."""
    import av

    h, w = frames[0][0].shape
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25, options=options or {})
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if colorspace is not None:
            s.codec_context.colorspace = colorspace
        s.codec_context.color_range = 2 if full_range else 1
        for planes in frames:
            f = av.VideoFrame(w, h, pix_fmt)
            for plane, arr in zip(f.planes, planes, strict=True):
                stride = plane.line_size // arr.dtype.itemsize
                buf = np.zeros((plane.height, stride), arr.dtype)
                buf[:, : arr.shape[1]] = arr
                plane.update(buf.astype(arr.dtype.newbyteorder("<")).tobytes())
            if colorspace is not None:
                f.colorspace = colorspace
            f.color_range = 2 if full_range else 1
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def growing_stream(path: Path, codec: str, sizes: list[tuple[int, int]], frames_each: int = 3) -> Path:
    """A raw elementary stream (``h264`` Annex B or ``mjpeg``) whose frame size changes mid-stream: one encode per size,
    concatenated, so the header (the first frame's size) says nothing of the frames that follow."""
    import io

    import av

    fmt = {"h264": "h264", "libx264": "h264", "mjpeg": "mjpeg"}[codec]
    pix = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    chunks = []
    for w, h in sizes:
        buf = io.BytesIO()
        with av.open(buf, "w", format=fmt) as c:
            s = c.add_stream(codec, rate=25)
            s.width, s.height, s.pix_fmt = w, h, pix
            for i in range(frames_each):
                img = np.zeros((h, w, 3), np.uint8)
                img[..., 0] = (np.arange(w)[None, :] * 3 + i * 7) % 256
                img[..., 1] = (np.arange(h)[:, None] * 5) % 256
                f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix)
                for pkt in s.encode(f):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        chunks.append(buf.getvalue())
    path.write_bytes(b"".join(chunks))
    return path


def write_pairs_manifest(folder: Path, n: int, frames: int, *, names: str = "p", broken: str | None = None,
                         missing: str = "missing.y4m") -> Path:
    """``folder/pairs.csv`` over ``n`` y4m pairs (rI.y4m, dI.y4m) of ``frames`` 32x24 frames, named ``{names}I``;
    ``broken``: one more row of that name whose distorted file (``missing``) does not exist."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["ref,dist,pair"]
    for i in range(n):
        write_y4m_planes(folder / f"r{i}.y4m", yuv_frames(frames, 32, 24, "yuv420p", seed=i), "yuv420p")
        write_y4m_planes(folder / f"d{i}.y4m", yuv_frames(frames, 32, 24, "yuv420p", seed=10 + i), "yuv420p")
        rows.append(f"r{i}.y4m,d{i}.y4m,{names}{i}")
    if broken is not None:
        rows.append(f"r0.y4m,{missing},{broken}")
    out = folder / "pairs.csv"
    out.write_text("\n".join(rows) + "\n")
    return out
