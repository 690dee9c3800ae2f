"""A copy of the shipped registry whose DISTS entry has a gated fp16 sibling (made once per test session)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def make_fp16_registry(dst: Path) -> Path:
    """model/tiny copied to ``dst``, with ``tinyreg quantize dists_vgg16 --mode fp16`` (16 pairs a size) run on it; the registry path."""
    from registry.quant.fp16 import fp16_entry

    shutil.copytree(REPO / "model" / "tiny", dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    reg = dst / "registry.json"
    fp16_entry(reg, "dists_vgg16", pairs=16)  # 64 pairs over the policy's 4 sizes: the tests need a passed record, fast
    return reg


def copy_registry(master: Path, dst: Path) -> Path:
    shutil.copytree(master.parent, dst)
    return dst / "registry.json"


def edit_entry(reg: Path, entry_id: str, change: Any) -> None:
    """Play the attacker: edit a row of registry.json in place, without tinyreg."""
    doc = json.loads(reg.read_text())
    for e in doc["models"]:
        if e["id"] == entry_id:
            change(e)
    reg.write_text(json.dumps(doc, indent=2))
