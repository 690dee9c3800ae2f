"""The CLI, in-process (typer's CliRunner); a few subprocess tests for exit codes, stderr and lazy imports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from registry.cli import app
from tests import onnx_factory as f
from tests.factories import one_line_error

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["add", "check-ops", "export", "hook", "init", "list", "migrate", "parity", "pin", "pull", "push", "quant-gate", "quantize",
            "recover", "report", "score", "show", "sign", "trust", "verify", "verify-bundle"]


def invoke(*args: str, cwd: Path | None = None) -> Result:
    if cwd is None:
        return CliRunner().invoke(app, list(args))
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        os.chdir(old)


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, cwd=cwd or REPO, env=env,
                          timeout=120)


def test_help_lists_exactly_the_commands() -> None:
    r = invoke("--help")
    assert r.exit_code == 0
    names = re.findall(r"^  ([a-z][a-z-]*)(?:\s|$)", r.stdout.split("Commands:")[1], flags=re.MULTILINE)
    assert sorted(names) == COMMANDS


def test_family_help_comes_from_the_installed_families() -> None:
    from registry.families import all_families

    r = invoke("export", "--help")
    text = " ".join(r.stdout.split())
    for fam in all_families():
        assert fam.name in text
        for w in fam.weights:
            assert w.key in text


def test_help_imports_neither_torch_nor_onnxruntime() -> None:
    code = ("import sys\nfrom registry.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "[]"


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


@pytest.mark.slow
def test_exit_codes_and_one_line_stderr_in_a_real_process(reg_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "registry.json"
    bad.write_text("{")
    p = run("verify", "--registry", str(bad))
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    onnx_path = reg_path.parent / "dists_vgg16.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    p = run("verify", "--registry", str(reg_path))
    assert p.returncode == 1 and "FAILED" in p.stdout
    p = run("quantize", "dists_vgg16", "--mode", "bogus", "--registry", str(reg_path))
    assert p.returncode == 2 and "bogus" in p.stderr and "Traceback" not in p.stderr


def test_bad_choice_fails_before_any_work(reg_path: Path) -> None:
    before = reg_path.read_bytes()
    t = time.perf_counter()
    r = invoke("quantize", "dists_vgg16", "--mode", "bogus", "--registry", str(reg_path))
    assert time.perf_counter() - t < 1.0
    assert r.exit_code == 2 and "'bogus' is not one of 'static', 'dynamic'" in " ".join(r.stderr.split())
    assert invoke("check-ops", "dists_vgg16", "--profile", "fp16").exit_code == 2
    assert invoke("score", "dists_vgg16", "a", "b", "--format", "xml").exit_code == 2
    assert invoke("add", "nope").exit_code == 2
    assert reg_path.read_bytes() == before


def test_init_then_found_from_folder(tmp_path: Path) -> None:
    assert invoke("init", str(tmp_path / "m")).exit_code == 0
    m = tmp_path / "m"
    assert invoke("add", "dists", cwd=m).exit_code == 0
    assert invoke("verify", cwd=m).exit_code == 0
    assert invoke("add", "lpips", cwd=m).exit_code == 0
    added = invoke("add", "ssim", "--json", cwd=m)
    assert added.exit_code == 0 and json.loads(added.stdout)["entry"]["smoke"] is False  # weight-free: the real model
    js = json.loads(invoke("list", "--json", cwd=m).stdout)
    assert {m["id"]: m["smoke"] for m in js["models"]} == {"dists_vgg16": True, "lpips_vgg16": True, "ssim_luma": False}
    show = json.loads(invoke("show", "dists_vgg16", "--json", cwd=m).stdout)
    assert show["entry"]["quant_accuracy_budget_plcc"] == 0.005


def test_every_command_speaks_the_json_envelope(reg_path: Path, tmp_path: Path) -> None:
    reg = ["--registry", str(reg_path)]
    runs = {
        "init": invoke("init", str(tmp_path / "new"), "--json"),
        "list": invoke("list", *reg, "--json"),
        "show": invoke("show", "dists_vgg16", *reg, "--json"),
        "pin": invoke("pin", "--all", "--check", *reg, "--json"),
        "check-ops": invoke("check-ops", "dists_vgg16", *reg, "--json"),
        "verify": invoke("verify", *reg, "--json"),
        "add": invoke("add", "lpips", *reg, "--json"),
        "quant-gate": invoke("quant-gate", "--all", *reg, "--json"),
    }
    for name, r in runs.items():
        assert r.exit_code == 0, (name, r.stdout, r.stderr)
        doc = json.loads(r.stdout)
        assert doc["command"] == name and doc["ok"] is True, doc
    # an error under --json: the envelope with ok false and the error, plus the one line on stderr
    r = invoke("show", "nope", *reg, "--json")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert doc == {"command": "show", "ok": False, "error": {"message": doc["error"]["message"], "exit_code": 2}}
    assert "no entry 'nope'" in doc["error"]["message"] and r.stderr.startswith("tinyreg: no entry 'nope'")
    import tempfile

    with tempfile.TemporaryDirectory() as empty:  # no registry here or in any parent
        r = invoke("list", "--json", cwd=Path(empty))
    doc = json.loads(r.stdout)
    assert r.exit_code == 2 and doc["ok"] is False and doc["error"]["hint"] == (
        "pass --registry PATH, set TINYREG_REGISTRY, or run 'tinyreg init'")
    # a failing verdict: ok false, exit 1
    (reg_path.parent / "dists_vgg16.onnx").write_bytes(b"junk")
    r = invoke("verify", *reg, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["ok"] is False and json.loads(r.stdout)["summary"]["errors"] >= 1


@pytest.mark.parametrize("content", ["{", "[1, 2]", "\xff"])
def test_malformed_registry(tmp_path: Path, content: str) -> None:
    p = tmp_path / "registry.json"
    p.write_bytes(content.encode("latin-1"))
    one_line_error(invoke("verify", "--registry", str(p)), 2)


def test_missing_registry(tmp_path: Path) -> None:
    assert "no registry" in one_line_error(invoke("verify", "--registry", str(tmp_path / "x.json")), 2)
    line = one_line_error(invoke("list", cwd=tmp_path), 2)
    assert line.endswith("(pass --registry PATH, set TINYREG_REGISTRY, or run 'tinyreg init')")  # the CLI's hint, not the library's message


def test_unknown_family_and_entry(reg_path: Path) -> None:
    before = reg_path.read_bytes()
    assert "'nope' is not one of 'dists', 'lpips', 'ssim'" in " ".join(invoke("add", "nope", "--registry", str(reg_path)).stderr.split())
    assert "no entry 'nope'" in one_line_error(invoke("show", "nope", "--registry", str(reg_path)), 2)
    assert reg_path.read_bytes() == before


def test_add_into_legacy_registry_refused(vmafx_copy: Path) -> None:
    before = vmafx_copy.read_bytes()
    assert "schema_version 1" in one_line_error(invoke("add", "dists", "--registry", str(vmafx_copy)), 2)
    assert vmafx_copy.read_bytes() == before
    assert not (vmafx_copy.parent / "dists_vgg16.onnx").exists()


def test_schema_violation_refused_on_write(reg_path: Path) -> None:
    doc = json.loads(reg_path.read_text())
    doc["models"][0]["license"] = ""
    reg_path.write_text(json.dumps(doc))
    before = reg_path.read_bytes()
    assert "schema violation" in one_line_error(invoke("add", "lpips", "--registry", str(reg_path)), 2)
    assert reg_path.read_bytes() == before


def test_check_ops(tmp_path: Path, reg_path: Path) -> None:
    m = tmp_path / "evil.onnx"
    m.write_bytes(f.custom_relu().SerializeToString())
    r = invoke("check-ops", str(m))
    assert r.exit_code == 1 and "evil.ops:1:Relu (node sneaky)" in r.stdout
    assert invoke("check-ops", "dists_vgg16", "--registry", str(reg_path)).exit_code == 0
    t = tmp_path / "trunc.onnx"
    t.write_bytes((reg_path.parent / "dists_vgg16.onnx").read_bytes()[:5000])
    assert "not an ONNX model" in one_line_error(invoke("check-ops", str(t)), 2)
    cfg = invoke("check-ops", "--emit-ort-config", "fp32")
    assert cfg.exit_code == 0 and "ai.onnx;17;" in cfg.stdout
    js = json.loads(invoke("check-ops", str(m), "--json").stdout)
    assert js["ok"] is False and js["command"] == "check-ops"


def test_pin_check_and_pin(reg_path: Path) -> None:
    assert invoke("pin", "--all", "--check", "--registry", str(reg_path)).exit_code == 0
    side = reg_path.parent / "dists_vgg16.json"
    side.write_text(side.read_text().replace('"kind": "fr"', '"kind": "fr" '))
    r = invoke("pin", "--all", "--check", "--registry", str(reg_path))
    assert r.exit_code == 1 and "dists_vgg16: would change files" in r.stdout
    assert invoke("verify", "--registry", str(reg_path)).exit_code == 1
    assert invoke("pin", "dists_vgg16", "--registry", str(reg_path)).exit_code == 0
    assert invoke("verify", "--registry", str(reg_path)).exit_code == 0
    assert "name an entry id" in one_line_error(invoke("pin", "--registry", str(reg_path)), 2)


def test_smoke_over_real_needs_force(reg_path: Path) -> None:
    doc = json.loads(reg_path.read_text())
    doc["models"][0]["smoke"] = False
    doc["models"][0]["provenance"] = {"exporter": "test", "tools": {}}
    doc["models"][0].pop("placeholder_for")
    reg_path.write_text(json.dumps(doc))
    before = reg_path.read_bytes()
    line = one_line_error(invoke("add", "dists", "--registry", str(reg_path)), 2)
    assert line.endswith("refusing to replace it with a smoke placeholder unless forced (use --force)")
    assert reg_path.read_bytes() == before
    assert invoke("add", "dists", "--force", "--registry", str(reg_path)).exit_code == 0


def test_library_errors_name_no_cli_flags(reg_path: Path) -> None:
    from registry.errors import SmokeOverwriteError
    from registry.export.smoke import add_smoke
    from registry.store.document import transaction

    with transaction(reg_path) as reg:
        e = reg.get("dists_vgg16")
        e["smoke"] = False
        e["provenance"] = {"exporter": "test", "tools": {}}
        e.pop("placeholder_for")
    with pytest.raises(SmokeOverwriteError) as info:
        add_smoke(reg_path, "dists")
    assert "--" not in str(info.value)


def test_weight_option_is_parsed_and_checked(tmp_path: Path) -> None:
    from registry.export.core import WeightSource

    assert WeightSource.parse("vgg16=/w/v.pth") == WeightSource("vgg16", "/w/v.pth", None)
    assert WeightSource.parse(f"lin=https://h/x.pth#{'A' * 64}") == WeightSource("lin", "https://h/x.pth", "a" * 64)
    assert WeightSource.parse("lin=https://h/x.pth#frag").source == "https://h/x.pth#frag"
    reg = tmp_path / "r"
    assert invoke("init", str(reg)).exit_code == 0
    line = one_line_error(invoke("export", "ssim", "--weight", "x=/nope", "--registry", str(reg)), 2)
    assert "family 'ssim' has no weight file 'x'" in line
    line = one_line_error(invoke("export", "dists", "--weight", "vgg16", "--registry", str(reg)), 2)
    assert "expected KEY=PATH" in line
    line = one_line_error(invoke("export", "dists", "--weight", "vgg16=/a#123", "--registry", str(reg)), 2)
    assert "not a sha256" in line


def test_every_command_takes_json() -> None:
    import typer.main

    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        flags = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
        assert "--json" in flags, name
