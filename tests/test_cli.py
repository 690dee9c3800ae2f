from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import onnx_factory as f

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "registry", *args], capture_output=True, text=True, cwd=cwd or REPO, env=env, timeout=120
    )


def one_line_error(p: subprocess.CompletedProcess[str], code: int) -> str:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_help() -> None:
    p = run("--help")
    assert p.returncode == 0
    for cmd in ("init", "add", "verify", "check-ops", "pin", "list", "show"):
        assert cmd in p.stdout


def test_core_commands_do_not_import_torch(reg_path: Path) -> None:
    code = (
        "import sys\nfrom registry.cli import app\n"
        "for argv in (['verify', '--registry', sys.argv[1]], ['check-ops', 'dists_vgg16', '--registry', sys.argv[1]],"
        " ['list', '--registry', sys.argv[1]]):\n"
        "    try:\n        app(argv)\n    except SystemExit as e:\n        assert e.code in (0, None), e.code\n"
        "print('torch' in sys.modules)\n"
    )
    p = subprocess.run([sys.executable, "-c", code, str(reg_path)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "False"


def test_init_then_found_from_folder(tmp_path: Path) -> None:
    assert run("init", str(tmp_path / "m")).returncode == 0
    p = run("add", "dists", cwd=tmp_path / "m")
    assert p.returncode == 0, p.stderr
    assert run("verify", cwd=tmp_path / "m").returncode == 0
    assert run("add", "lpips", cwd=tmp_path / "m").returncode == 0
    js = json.loads(run("list", "--json", cwd=tmp_path / "m").stdout)
    assert [m["id"] for m in js["models"]] == ["dists_vgg16", "lpips_vgg16"]
    assert all(m["smoke"] for m in js["models"])
    show = json.loads(run("show", "dists_vgg16", "--json", cwd=tmp_path / "m").stdout)
    assert show["quant_accuracy_budget_plcc"] == 0.005


def test_verify_json_and_exit_codes(reg_path: Path) -> None:
    p = run("verify", "--registry", str(reg_path), "--json")
    assert p.returncode == 0
    assert json.loads(p.stdout)["ok"] is True
    onnx_path = reg_path.parent / "dists_vgg16.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    p = run("verify", "--registry", str(reg_path), "--json")
    assert p.returncode == 1
    assert json.loads(p.stdout)["summary"]["errors"] >= 1
    p = run("verify", "--registry", str(reg_path))
    assert p.returncode == 1 and "FAILED" in p.stdout


@pytest.mark.parametrize("content", ["{", "[1, 2]", "\xff"])
def test_malformed_registry(tmp_path: Path, content: str) -> None:
    p = tmp_path / "registry.json"
    p.write_bytes(content.encode("latin-1"))
    line = one_line_error(run("verify", "--registry", str(p)), 2)
    assert line.startswith("tinyreg: ")


def test_missing_registry(tmp_path: Path) -> None:
    assert "no registry" in one_line_error(run("verify", "--registry", str(tmp_path / "x.json")), 2)
    assert "tinyreg init" in one_line_error(run("list", cwd=tmp_path), 2)


def test_unknown_family_and_entry(reg_path: Path) -> None:
    before = reg_path.read_bytes()
    assert "unknown model family" in one_line_error(run("add", "nope", "--registry", str(reg_path)), 2)
    assert "no entry" in one_line_error(run("show", "nope", "--registry", str(reg_path)), 2)
    assert reg_path.read_bytes() == before


def test_add_into_legacy_registry_refused(vmafx_copy: Path) -> None:
    before = vmafx_copy.read_bytes()
    assert "schema_version 1" in one_line_error(run("add", "dists", "--registry", str(vmafx_copy)), 2)
    assert vmafx_copy.read_bytes() == before
    assert not (vmafx_copy.parent / "dists_vgg16.onnx").exists()


def test_schema_violation_refused_on_write(reg_path: Path) -> None:
    doc = json.loads(reg_path.read_text())
    doc["models"][0]["license"] = ""
    reg_path.write_text(json.dumps(doc))
    before = reg_path.read_bytes()
    assert "schema violation" in one_line_error(run("add", "lpips", "--registry", str(reg_path)), 2)
    assert reg_path.read_bytes() == before


def test_check_ops(tmp_path: Path, reg_path: Path) -> None:
    m = tmp_path / "evil.onnx"
    m.write_bytes(f.custom_relu().SerializeToString())
    p = run("check-ops", str(m))
    assert p.returncode == 1 and "evil.ops:1:Relu (node sneaky)" in p.stdout
    assert run("check-ops", "dists_vgg16", "--registry", str(reg_path)).returncode == 0
    t = tmp_path / "trunc.onnx"
    data = (reg_path.parent / "dists_vgg16.onnx").read_bytes()
    t.write_bytes(data[:5000])
    assert "not an ONNX model" in one_line_error(run("check-ops", str(t)), 2)
    cfg = run("check-ops", "--emit-ort-config", "fp32")
    assert cfg.returncode == 0 and "ai.onnx;17;" in cfg.stdout
    js = json.loads(run("check-ops", str(m), "--json").stdout)
    assert js["ok"] is False


def test_pin_check_and_pin(reg_path: Path) -> None:
    assert run("pin", "--all", "--check", "--registry", str(reg_path)).returncode == 0
    side = reg_path.parent / "dists_vgg16.json"
    side.write_text(side.read_text().replace('"kind": "fr"', '"kind": "fr" '))
    p = run("pin", "--all", "--check", "--registry", str(reg_path))
    assert p.returncode == 1 and "would change" in p.stdout
    assert run("verify", "--registry", str(reg_path)).returncode == 1
    assert run("pin", "dists_vgg16", "--registry", str(reg_path)).returncode == 0
    assert run("verify", "--registry", str(reg_path)).returncode == 0
    assert "name an entry id" in one_line_error(run("pin", "--registry", str(reg_path)), 2)


def test_smoke_over_real_needs_force(reg_path: Path) -> None:
    doc = json.loads(reg_path.read_text())
    doc["models"][0]["smoke"] = False
    doc["models"][0]["provenance"] = {"exporter": "test", "tools": {}}
    doc["models"][0].pop("placeholder_for")
    reg_path.write_text(json.dumps(doc))
    before = reg_path.read_bytes()
    assert "--force" in one_line_error(run("add", "dists", "--registry", str(reg_path)), 2)
    assert reg_path.read_bytes() == before
    assert run("add", "dists", "--force", "--registry", str(reg_path)).returncode == 0
