"""verify as a table of named checks: every check has an id and a docstring, the docs list them, findings carry them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from registry import verify as v
from registry.verify import CHECKS, Check, check, verify_registry

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
SHIPPED = REPO / "model" / "tiny"


def _doc_table() -> dict[str, str]:
    """id -> scope, from the check table of docs/architecture.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## `verify` is a table of named checks"):text.index("### Adding a check")]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z0-9-]+)` \| (registry|entry|folder) \|", section, re.M)}


def test_every_check_has_a_unique_id_a_scope_and_a_docstring() -> None:
    ids = [c.id for c in CHECKS]
    assert len(ids) == len(set(ids))
    for c in CHECKS:
        assert re.fullmatch(r"[a-z][a-z0-9-]*", c.id), c.id
        assert c.scope in ("registry", "entry", "folder")
        assert c.doc.strip(), c.id


def test_the_documented_table_is_the_table() -> None:
    assert _doc_table() == {c.id: c.scope for c in CHECKS}


@pytest.mark.parametrize(
    ("check_id", "doc", "error"),
    [("no-doc", None, "no docstring"), ("Bad Id", "checks something.", "lowercase-dashed"), ("schema", "again.", "twice")],
)
def test_a_check_without_an_id_or_a_docstring_cannot_be_registered(check_id: str, doc: str | None, error: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(v, "CHECKS", list(CHECKS))

    def fn(ctx: object) -> None:
        pass

    fn.__doc__ = doc
    with pytest.raises(ValueError, match=error):
        check(check_id, "registry")(fn)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    shutil.copytree(SHIPPED, root)
    return root / "registry.json"


def test_findings_carry_the_id_of_the_check_that_made_them(tmp_path: Path) -> None:
    reg = _copy(tmp_path)
    root = reg.parent
    (root / "stray.txt").write_text("x")
    side = root / "ssim_luma.json"
    side.write_text(side.read_text().replace('"ssim_luma.onnx"', '"other.onnx"', 1))
    model = root / "lpips_vgg16.onnx"
    data = bytearray(model.read_bytes())
    data[-5] ^= 1
    model.write_bytes(bytes(data))
    by_id = {(f.entry, f.check_id) for f in verify_registry(reg).findings}
    assert ("-", "unlisted") in by_id
    assert ("ssim_luma", "sidecar") in by_id
    assert ("lpips_vgg16", "model") in by_id
    assert {f.check_id for f in verify_registry(reg).findings} <= {c.id for c in CHECKS}


def test_json_findings_keep_their_fields_and_add_check_id(tmp_path: Path) -> None:
    reg = _copy(tmp_path)
    (reg.parent / "stray.txt").write_text("x")
    doc = json.loads(json.dumps(verify_registry(reg).as_json()))
    assert doc["findings"] == [{"entry": "-", "check": "unlisted", "check_id": "unlisted", "severity": "error",
                                "message": "stray.txt is in the registry folder but the registry does not list it"}]


def test_a_check_added_in_one_place_runs_in_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def no_notes(ctx: v.Context, s: v.Subject) -> None:
        """Every entry has notes (a test check)."""
        seen.append(s.id)
        ctx.add(s.id, "notes", "a finding of the added check", v.WARNING)

    monkeypatch.setattr(v, "CHECKS", [*CHECKS, Check("notes", "entry", no_notes)])
    r = verify_registry(_copy(tmp_path))
    assert sorted(seen) == ["dists_vgg16", "lpips_vgg16", "ssim_luma"]
    assert {(f.entry, f.check_id) for f in r.findings} == {(e, "notes") for e in seen}
    assert r.ok  # a warning


def test_a_check_that_breaks_becomes_one_input_finding_and_the_table_goes_on(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx: v.Context) -> None:
        """Raises on any input (a test check)."""
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(v, "CHECKS", [Check("broken", "registry", broken), *CHECKS])
    reg = _copy(tmp_path)
    (reg.parent / "stray.txt").write_text("x")
    r = verify_registry(reg)
    assert [(f.check, f.check_id) for f in r.findings if f.check_id == "broken"] == [("input", "broken")]
    assert any(f.check_id == "unlisted" for f in r.findings)  # the later checks still ran
