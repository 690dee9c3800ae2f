"""``verify`` says what libvmaf's runtime will refuse, where the folder is one VMAFx consumes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from registry.export.smoke import add_smoke
from registry.families import get_family
from registry.migrate import migrate_registry
from registry.onnx.build import GraphBuilder
from registry.verify import verify_registry


def vmafx_findings(path: Path) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for f in verify_registry(path).findings:
        if f.check == "allowlist:vmafx":
            out.setdefault((f.entry, f.severity), []).append(f.message)
    return out


def with_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """SSIM's graph built as it was before: Split, which the fork's runtime refuses (and its declared op set to match)."""
    def unstack(self: GraphBuilder, x: str, n: int, axis: int, name: str | None = None) -> list[str]:
        sizes = self.const(self._fresh("split"), [1] * n, np.int64)
        return self.op("Split", [x, sizes], n, name=name, axis=axis)

    monkeypatch.setattr(GraphBuilder, "unstack", unstack)
    fam = type(get_family("ssim"))
    monkeypatch.setattr(fam, "ops", (fam.ops - {("ai.onnx", "Slice")}) | {("ai.onnx", "Split")})


def test_adopted_models_refused_by_their_own_runtime_are_warnings(migrated_vmafx: Path) -> None:
    """The fork's dynamic int8 siblings use ConvInteger/MatMulInteger/DynamicQuantizeLinear: refused before tinyreg."""
    r = verify_registry(migrated_vmafx)
    assert r.ok, [f.message for f in r.errors]
    found = vmafx_findings(migrated_vmafx)
    assert set(found) == {(e, "warning") for e in ("learned_filter_v1", "nr_metric_v1", "vmaf_tiny_v3", "vmaf_tiny_v4")}
    assert all(".int8.onnx" in m and "will not load" in m for ms in found.values() for m in ms)


def test_tinyreg_graph_the_fork_refuses_is_an_error_in_an_adopted_folder(
    migrated_vmafx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst = tmp_path / "tiny"
    shutil.copytree(migrated_vmafx.parent, dst)
    add_smoke(dst / "registry.json", "ssim")  # today's graph: loads in the fork
    assert ("ssim_luma", "error") not in vmafx_findings(dst / "registry.json")
    with_split(monkeypatch)
    add_smoke(dst / "registry.json", "ssim", entry_id="ssim_split")
    found = vmafx_findings(dst / "registry.json")
    assert found[("ssim_split", "error")] == ["ssim_split.onnx: the VMAFx runtime allowlist refuses Split "
                                              "(libvmaf --tiny-model will not load this graph)"]
    assert not verify_registry(dst / "registry.json").ok


def test_native_folder_is_checked_once_it_carries_the_fork_gate_file(reg_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_split(monkeypatch)
    add_smoke(reg_path, "ssim", entry_id="ssim_split")
    assert vmafx_findings(reg_path) == {}  # a registry nobody said VMAFx consumes: check-ops --profile vmafx tells
    migrate_registry(reg_path)  # writes registry.schema.json: the folder is now meant for the fork
    assert ("ssim_split", "error") in vmafx_findings(reg_path)


def lookup_findings(path: Path) -> list[tuple[str, str, str]]:
    return [(f.entry, f.severity, f.message) for f in verify_registry(path).findings if f.check == "vmafx:loader"]


def test_verify_reports_hand_edits_that_break_libvmaf_lookups(migrated_vmafx: Path, tmp_path: Path) -> None:
    """The writer keeps the lookups right (tests/compat/test_attacks.py); verify catches a hand edit that does not."""
    import json

    dst = tmp_path / "tiny"
    shutil.copytree(migrated_vmafx.parent, dst)
    path = dst / "registry.json"
    assert lookup_findings(path) == []
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))  # provenance.tools.onnx between onnx and the bundle
    found = lookup_findings(path)
    assert len(found) == len(doc["models"]) and all(sev == "error" and "resolves the bundle" in m for _, sev, m in found)
    from registry.store.document import dumps_registry

    doc["models"][0]["notes"] = "NOTE"
    text = dumps_registry(doc).replace(b'"NOTE"', b'"onnx"')  # a raw "onnx" note, then "opset": 17 follows
    path.write_bytes(text)
    found = lookup_findings(path)
    assert len(found) == len(doc["models"]) - 1 and all("fails (EBADMSG)" in m for _, _, m in found), found
    path.write_text(json.dumps({**doc, "padding": "x" * (1 << 20)}))
    assert any("libvmaf refuses a registry over 1 MiB" in m for _, _, m in lookup_findings(path))


def test_verify_reports_a_sidecar_libvmaf_misreads(signed_native: Path, tmp_path: Path) -> None:
    import json

    dst = tmp_path / "tiny"
    shutil.copytree(signed_native.parent, dst)
    side = dst / "ssim_luma.json"
    doc = json.loads(side.read_text())
    del doc["name"]
    side.write_text(json.dumps(doc, indent=2, sort_keys=True))  # now the first "name" is the input's, inside io
    found = lookup_findings(dst / "registry.json")
    assert any(e == "ssim_luma" and sev == "error" and "name 'ref' (the sidecar says None)" in m for e, sev, m in found), found


def test_verify_reads_registry_json_once(migrated_vmafx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The libvmaf scan (and the snapshot digest) use the bytes the document was parsed from: no second read that may differ."""
    from registry._internal import safeio

    opened: list[str] = []
    real = safeio.open_fd

    def counting(path: object, **kw: object) -> tuple[int, object]:
        opened.append(Path(str(path)).name)
        return real(path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(safeio, "open_fd", counting)
    verify_registry(migrated_vmafx)
    assert opened.count("registry.json") == 1
