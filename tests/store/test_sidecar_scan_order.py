"""Sidecars libvmaf reads without a JSON parser (first occurrence of each key in the raw text): an entry id
that spells one of those keys (attack on issue 22's "the writer makes a misread impossible")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.export.smoke import add_smoke
from registry.store.document import init_registry
from registry.store.entries import SIDECAR_LEADING_KEYS, sidecar_leading_keys
from registry.store.vmafx_scan import SIDECAR_KEYS, sidecar_reads
from registry.verify import verify_registry


@pytest.mark.parametrize("entry_id", ["quant_mode", "input_name", "output_name", "kind", "name", "onnx_opset"])
def test_an_id_that_spells_a_scanned_key_is_read_back_by_libvmaf(tmp_path: Path, entry_id: str) -> None:
    reg = init_registry(tmp_path / "tiny")
    add_smoke(reg, "ssim", entry_id=entry_id)
    raw = (tmp_path / "tiny" / f"{entry_id}.json").read_bytes()
    doc = json.loads(raw)
    assert doc["name"] == entry_id
    # libvmaf used to read quant_mode 'fr' (the value after "name": "quant_mode") and input_name 'fr'
    assert sidecar_reads(raw) == {k: doc.get(k) for k in SIDECAR_KEYS}
    # what verify checks in a folder the fork consumes (a copy of its gate's schema file marks one)
    (tmp_path / "tiny" / "registry.schema.json").write_text("{}")
    assert not [f for f in verify_registry(reg).findings if f.check == "vmafx:loader"]


def test_default_order_is_kept_when_nothing_collides() -> None:
    doc = {"name": "dists_vgg16", "kind": "fr", "input_name": "ref", "output_name": "score", "onnx_opset": 17,
           "quant_mode": "fp32"}
    assert sidecar_leading_keys(doc) == SIDECAR_LEADING_KEYS
    assert sidecar_leading_keys({**doc, "name": "quant_mode"})[-1] == "name"
