from __future__ import annotations

from pathlib import Path

import pytest

from registry.errors import InputError
from registry.export.smoke import smoke_bytes
from registry.families import get_family
from registry.onnx.allowlist import check_model, errors_only, load_allowlist, ort_reduced_config
from registry.onnx.inspect import inspect_bytes
from tests import onnx_factory as f

ALLOW = load_allowlist()


def codes(model: object, profile: str = "fp32", model_dir: Path | None = None) -> list[str]:
    info = inspect_bytes(model.SerializeToString(), "m")  # type: ignore[attr-defined]
    return [str(v) for v in errors_only(check_model(info, ALLOW, profile, model_dir=model_dir))]


def test_clean_model() -> None:
    assert codes(f.tiny()) == []


@pytest.mark.parametrize("name", ["dists", "lpips"])
def test_smoke_models_pass(name: str) -> None:
    info = inspect_bytes(smoke_bytes(get_family(name)), name)
    assert check_model(info, ALLOW, "fp32") == []


def test_opset_and_ir_range() -> None:
    assert any(c.startswith("opset") for c in codes(f.tiny(opset=16)))
    assert any(c.startswith("ir_version") for c in codes(f.tiny(ir=3)))


def test_custom_domain_reusing_standard_name() -> None:
    out = codes(f.custom_relu())
    assert any(c.startswith("evil.ops:1:Relu (node sneaky)") and "reuses the standard name" in c for c in out)


def test_function_hiding_ops() -> None:
    out = codes(f.with_function())
    assert any("local.fn:1:Wrap" in c and "model-local function" in c for c in out)
    assert any("ai.onnx:17:Einsum (node hidden)" in c and "function local.fn:Wrap" in c for c in out)


def test_nested_subgraph() -> None:
    out = codes(f.with_if())
    assert any(c.startswith("ai.onnx:17:If (node branch)") for c in out)
    assert any("Einsum (node inner)" in c and "then_branch" in c for c in out)


def test_external_data_escaping(tmp_path: Path) -> None:
    m = f.with_external(tmp_path, "../w.onnx.data")
    assert any(c.startswith("external_data") for c in codes(m, model_dir=tmp_path))
    ok = f.with_external(tmp_path, "w.onnx.data")
    assert codes(ok, model_dir=tmp_path) == []
    (tmp_path / "link.data").symlink_to("/etc/hostname")
    bad = f.with_external(tmp_path, "link.data", data_name="unused.data")
    assert any("outside" in c for c in codes(bad, model_dir=tmp_path))


def test_unused_import_is_a_warning() -> None:
    from onnx import helper

    m = f.tiny(extra_imports=[helper.make_opsetid("com.microsoft", 1)])
    info = inspect_bytes(m.SerializeToString(), "m")
    vs = check_model(info, ALLOW, "fp32")
    assert [v.severity for v in vs] == ["warning"]


def test_int8_profile_inherits() -> None:
    ops = ALLOW.ops("int8")
    assert "Conv" in ops["ai.onnx"] and "QLinearConv" in ops["ai.onnx"]
    assert "QLinearConv" not in ALLOW.ops("fp32")["ai.onnx"]


def test_ort_config_format() -> None:
    text = ort_reduced_config(ALLOW, "int8")
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert "ai.onnx;17;" in text and any(ln.startswith("com.microsoft;1;") for ln in lines)
    for ln in lines:
        dom, ver, ops = ln.split(";")
        assert dom and int(ver) > 0 and all(ops.split(","))


def test_not_onnx() -> None:
    with pytest.raises(InputError, match="not an ONNX model"):
        inspect_bytes(b"hello world, not protobuf", "x.onnx")
    data = smoke_bytes(get_family("dists"))
    with pytest.raises(InputError, match="not an ONNX model"):
        inspect_bytes(data[: len(data) // 2], "trunc.onnx")


def test_bad_allowlist_file(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text('{"profiles": {}}')
    with pytest.raises(InputError, match="malformed"):
        load_allowlist(p)
