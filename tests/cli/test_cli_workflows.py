"""End-to-end CLI runs of the everyday workflows (subprocesses, real exit codes and stderr)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.mark.slow
def test_add_quantize_trust_sign_verify(tmp_path: Path) -> None:
    from tests.factories import keypair

    assert run("init", ".", cwd=tmp_path).returncode == 0
    assert run("add", "dists", cwd=tmp_path).returncode == 0
    q = run("quantize", "dists_vgg16", "--mode", "static", cwd=tmp_path)
    assert q.returncode == 0, q.stderr
    assert "static int8" in q.stdout and q.stderr == ""  # quantiser chatter stays off stderr
    g = run("quant-gate", "--all", "--json", cwd=tmp_path)
    assert g.returncode == 0 and json.loads(g.stdout)["ok"] is True
    keys = tmp_path.parent / f"{tmp_path.name}-keys"  # never in the registry folder: every file there is checked
    keys.mkdir()
    priv, pub = keypair(keys, "k")
    assert run("trust", "--key", str(pub), cwd=tmp_path).returncode == 0
    s = run("sign", "--all", "--key", str(priv), cwd=tmp_path)
    assert s.returncode == 0 and "dists_vgg16.onnx.sigstore.json" in s.stdout, s.stderr
    v = run("verify", "--json", cwd=tmp_path)
    assert v.returncode == 0, v.stdout
    assert json.loads(v.stdout)["summary"] == {"errors": 0, "warnings": 0}
    (tmp_path / "k.pem").write_bytes(priv.read_bytes())  # a private key left in the folder is a finding
    v = run("verify", "--json", cwd=tmp_path)
    assert v.returncode == 1 and [x["message"] for x in json.loads(v.stdout)["findings"]] == [
        "k.pem is in the registry folder but the registry does not list it"]
    (tmp_path / "k.pem").unlink()
    bad = run("sign", "--all", cwd=tmp_path)
    assert bad.returncode == 2 and "--key" in bad.stderr and "Traceback" not in bad.stderr
    # the int8 sibling is covered by the signature: changing it breaks verify
    int8 = tmp_path / "dists_vgg16.int8.onnx"
    int8.write_bytes(int8.read_bytes() + b"\0")
    v = run("verify", cwd=tmp_path)
    assert v.returncode == 1 and "changed since it was signed" in v.stdout, v.stdout


@pytest.mark.slow
def test_export_and_parity_cli(tmp_path: Path) -> None:
    from tests.dists_fixtures import alpha_beta_path, write_random_vgg

    vgg = tmp_path / "vgg.pth"
    sha = write_random_vgg(vgg)
    reg = tmp_path / "reg"
    assert run("init", str(reg), cwd=tmp_path).returncode == 0
    ab = f"alpha_beta={alpha_beta_path()}"
    common = ["--registry", str(reg), "--weight", ab]
    wrong = run("export", "dists", *common, "--weight", f"vgg16={vgg}", cwd=tmp_path)
    assert wrong.returncode == 1 and "does not match the pin" in wrong.stderr
    bad_opset = run("export", "dists", *common, "--weight", f"vgg16={vgg}#{sha}", "--opset", "16", cwd=tmp_path)
    assert bad_opset.returncode == 2 and "opset 16" in bad_opset.stderr
    ok = run("export", "dists", *common, "--weight", f"vgg16={vgg}#{sha}", cwd=tmp_path)
    assert ok.returncode == 0 and "(opset 17)" in ok.stdout, ok.stderr
    p = run("parity", "dists_vgg16", *common, "--weight", f"vgg16={vgg}", "--pairs", "2", "--size", "48", "--size", "33x41",
            "--record", "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["ok"] and res["recorded"] and res["parity"]["passed"] and res["parity"]["pairs"] == 4
    assert res["parity"]["max_abs_diff"] <= 1e-5
    shown = json.loads(run("show", "dists_vgg16", "--registry", str(reg), "--json", cwd=tmp_path).stdout)["entry"]
    assert shown["parity"]["passed"] is True and shown["smoke"] is False
    assert run("verify", "--registry", str(reg), cwd=tmp_path).returncode == 0
    missing = run("parity", "dists_vgg16", "--registry", str(reg), "--pairs", "1", cwd=tmp_path)
    assert missing.returncode == 2 and "built from a local vgg16 file" in missing.stderr
    assert "pass --weight vgg16=PATH" in missing.stderr  # the CLI's hint on a library error that names no flag
