"""Generated libvmaf logs (JSON and CSV, as libvmaf 2.x writes them) for the feature input-set builder.

Each clip has a latent quality q; its frames' canonical-6 features follow q the way real encodes
do (adm2 and the VIF scales rise with quality, the finer VIF scales spread most) around the
training statistics the VMAFx sidecars record (input_mean / input_std), and motion2 is a
per-clip level with per-frame jitter.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

# (mean at q = 0.62, slope per unit q, per-frame noise) for adm2, vif_scale0..3
_LINEAR = {"adm2": (0.915, 0.17, 0.006), "vif_scale0": (0.504, 0.70, 0.02), "vif_scale1": (0.756, 0.42, 0.012),
           "vif_scale2": (0.840, 0.31, 0.01), "vif_scale3": (0.892, 0.24, 0.008)}


def clip_features(q: float, motion: float, frames: int, rng: np.random.Generator) -> list[dict[str, float]]:
    out = []
    for _ in range(frames):
        m: dict[str, float] = {}
        for name, (mean, slope, noise) in _LINEAR.items():
            m[f"integer_{name}"] = float(np.clip(mean + slope * (q - 0.62) + rng.normal(0, noise), 0.0, 1.0))
        m["integer_motion2"] = float(max(0.0, motion + rng.normal(0, 0.1 * motion + 0.05)))
        m["integer_adm_scale0"] = float(np.clip(m["integer_adm2"] - 0.03, 0, 1))  # a feature the models do not take
        out.append(m)
    return out


def write_logs(folder: Path, clips: int = 6, frames: int = 12, seed: int = 0) -> list[Path]:
    """Half the clips as JSON logs, half as CSV logs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for c in range(clips):
        q = float(rng.beta(2.0, 1.2))
        feats = clip_features(q, float(rng.gamma(1.0, 6.4)), frames, rng)
        if c % 2 == 0:
            p = folder / f"clip{c}.json"
            doc = {"version": "3.0.0", "fps": 25.0,
                   "frames": [{"frameNum": i, "metrics": {**m, "vmaf": 100 * q}} for i, m in enumerate(feats)]}
            p.write_text(json.dumps(doc, indent=2))
        else:
            p = folder / f"clip{c}.csv"
            with p.open("w", newline="") as fh:
                w = csv.writer(fh)
                keys = sorted(feats[0])
                w.writerow(["Frame", *keys, "vmaf"])
                for i, m in enumerate(feats):
                    w.writerow([i, *(f"{m[k]:.6f}" for k in keys), f"{100 * q:.6f}"])
        paths.append(p)
    return paths
