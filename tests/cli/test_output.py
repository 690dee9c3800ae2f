"""Output for people: columns that survive pipes and logs, grouped findings, words a user understands,
one alias per repeated option and one result object per command."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from registry.cli import _output as out
from registry.cli import app
from registry.cli._dataset import dataset_result
from registry.cli._text import gate_words, group_findings
from registry.cli.model_cmds import score_line
from registry.quant.gate import GateResult
from registry.scoring.score import ScoreResult
from tests.conftest import REPO

LONG_ID = "dists_vgg16_finetuned_on_a_very_long_dataset_name_v12"


def tinyreg(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("columns", [80, 200, None])
def test_list_never_wraps_ids_or_numbers_piped(reg_path: Path, columns: int | None) -> None:
    from registry.export.smoke import add_smoke

    add_smoke(reg_path, "lpips", entry_id=LONG_ID)
    p = tinyreg("list", "--registry", str(reg_path), columns=columns)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    row = next(ln for ln in lines if ln.startswith(LONG_ID))  # the whole id on its row, at any width
    assert f"{LONG_ID}.onnx" in row and row.split()[4] == "17"  # the path and the opset whole, in their columns
    assert not any(ch in p.stdout for ch in "┃│┏━")  # no box drawing in a log
    header = lines[1]
    assert header.split() == ["id", "kind", "smoke", "onnx", "opset", "quant", "signed", "license"]
    # aligned: every row's opset ends where the header's column ends
    end = header.index("opset") + len("opset")
    assert all(ln[:end].endswith("17") for ln in lines[3:])


def test_table_wraps_only_free_text_on_a_narrow_terminal() -> None:
    t = out.Table("t", ["entry", "check", "finding"], [[LONG_ID, "signature", "word " * 40]], frozenset({2}))
    narrow = t.lines(width=100, tty=True)
    assert narrow[3].startswith(LONG_ID + "  signature  word") and len(narrow) > 4  # the finding wrapped onto more lines
    assert all(len(ln) <= 100 for ln in narrow)
    assert all(ln.startswith(" " * (len(LONG_ID) + len("  signature  "))) for ln in narrow[4:])  # continuation: finding only
    tight = t.lines(width=40, tty=True)  # narrower than the id itself: the id still whole, the finding at its minimum
    assert tight[3].startswith(LONG_ID) and all(len(ln) <= len(LONG_ID) + 13 + 20 for ln in tight)
    assert t.lines(width=80, tty=False) == t.lines(width=None, tty=False)  # piped: as long as the content, never wrapped
    assert len(t.lines(width=80, tty=False)) == 4
    wide = t.lines(width=400, tty=True)
    assert len(wide) == 4


def test_numbers_with_the_digits_that_matter() -> None:
    assert [out.num(x) for x in (0.048484312, 16, 1.0, 0.00169071, 123456.7, float("nan"), float("inf"), None)] == [
        "0.04848", "16", "1", "0.001691", "1.235e+05", "nan", "inf", "-"]
    assert out.num(0.99987654, 6) == "0.999877"


@dataclass
class F:
    entry: str
    check: str
    message: str
    severity: str = "error"


def test_repeated_findings_grouped() -> None:
    fs = [F(f"e{i}", "signature", f"sigstore_bundle e{i}.onnx.sigstore.json is listed but missing") for i in range(19)]
    fs += [F("-", "unlisted", f"x{i}.onnx.data is in the registry folder but the registry does not list it") for i in range(3)]
    fs += [F("e1", "opset", "registry says opset 17 but the graph imports 18"),
           F("a", "files", "model a.onnx is missing"), F("b", "files", "model b.onnx is missing")]
    gs = group_findings(fs)
    assert [(g.who, g.check) for g in gs] == [("19 entries", "signature"), ("3 files", "unlisted"), ("e1", "opset"),
                                              ("a", "files"), ("b", "files")]
    assert gs[0].message == "sigstore_bundle <file> is listed but missing"
    assert gs[0].listing == ", ".join(f"e{i}" for i in range(19))
    assert gs[1].listing == "x0.onnx.data, x1.onnx.data, x2.onnx.data"
    assert gs[3].message == "model a.onnx is missing"  # under the threshold: each as it is


def test_verify_text_groups_but_json_keeps_every_finding(vmafx_copy: Path) -> None:
    p = tinyreg("verify", "--registry", str(vmafx_copy), columns=80)
    assert p.returncode == 1
    assert re.search(r"^error +\d+ entries +signature +sigstore_bundle <file> is listed but missing$", p.stdout, re.M), p.stdout
    assert len(p.stdout.splitlines()) < 40  # was ~150 lines of folded cells
    from typer.testing import CliRunner

    j = CliRunner().invoke(app, ["verify", "--registry", str(vmafx_copy), "--json"])
    doc = json.loads(j.stdout)
    sig = [f for f in doc["findings"] if f["check"] == "signature"]
    n = len(sig)
    assert n >= 19 and f"{n} entries" in p.stdout
    assert all(f["entry"] in p.stdout for f in sig)  # every member is named in the text too
    assert re.search(rf"^signature, {n} entries: [a-z0-9_]+, ", p.stdout, re.M)


def test_score_line_words() -> None:
    img = ScoreResult("dists_vgg16", "dists", False, "lower is better", [0.0484843123])
    assert score_line(img) == "DISTS (VGG-16): 0.0484843 (lower is better \u2193), fp32, entry dists_vgg16"
    vid = ScoreResult("ssim_luma", "ssim", True, "higher is better", [0.99, 0.95, 0.999])
    assert score_line(vid) == ("SSIM (luma, Gaussian 11x11): mean 0.979667 over 3 frames (higher is better \u2191), "
                               "worst frame 1: 0.95 (min), fp32, entry ssim_luma -- SMOKE PLACEHOLDER: random weights, "
                               "the score means nothing")
    dvid = ScoreResult("dists_vgg16", "dists", False, "lower is better", [0.1, 0.4, 0.2])
    assert "worst frame 1: 0.4 (max)" in score_line(dvid)


def test_gate_in_words() -> None:
    r = GateResult("dists_vgg16", "static", 384, ["64x64"], 0, 0.005, 0.99831, 0.99221, 0.00169071, (0.00127442, 0.00223121),
                   0.0046, 0.024, True)
    text = gate_words(r)
    assert text.startswith("dists_vgg16 (static int8): drop = 1 - PLCC against fp32 on 384 sample pairs = 0.00169 "
                           "(95% CI 0.00127..0.00223); the 95% upper bound 0.00223 is within the budget 0.005")


@dataclass
class FakeRun:
    entry: str = "dists_vgg16"
    smoke: bool = False
    out: str = "/nonexistent/results.jsonl"
    engine: str = "local"
    workers: int = 2
    threads: int = 1
    pairs: int = 5
    skipped: int = 0
    scored: int = 5
    frames: int = 9
    errors: Any = None
    summaries: Any = None

    def as_json(self) -> dict[str, Any]:
        return {"entry": self.entry, "pairs": self.pairs}


def test_dataset_counts_add_up_and_name_the_worst_frame(tmp_path: Path) -> None:
    from tests.report.factory import curve, write_results

    res_file = write_results(tmp_path / "r.jsonl", {"p0": curve(3, spike=1), "p1": curve(3), "p2": curve(3, spike=2),
                                                    "bad1": "no such file", "bad2": "corrupt"})
    from registry.report import read_results

    doc = read_results(res_file)
    summaries = [p.summary or {"type": "error", "pair": p.pair, "error": p.error} for p in doc.pairs.values()]
    run = FakeRun(out=str(res_file), errors=[{"pair": "bad1", "error": "x"}, {"pair": "bad2", "error": "y"}], summaries=summaries)
    r = dataset_result(run, "lower is better")
    text = out.text_of(r)
    assert "5 pairs: 3 scored now, 0 before, 2 failed; 9 frames" in text
    assert "worst (max)" in text and "at frame" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("p0 "))
    assert row.split()[-2:] == ["0.9", "1"]  # p0's worst frame: frame 1, its max
    assert r.exit_code == 1 and r.data["failed"] == [{"pair": "bad1", "error": "no such file"}, {"pair": "bad2", "error": "corrupt"}]
    r2 = dataset_result(FakeRun(out=str(res_file), errors=[], scored=0, skipped=5, summaries=summaries), "higher is better")
    assert "5 pairs: 0 scored now, 5 before (2 of them failed), 0 failed" in out.text_of(r2) and "worst (min)" in out.text_of(r2)


SHARED = ["--all", "--key", "--identity", "--issuer", "--trusted-root", "--staging", "--trust", "--json", "--registry"]


def test_every_repeated_option_is_one_alias() -> None:
    """The same flag means the same type, help and default in every command that takes it."""
    click_app = get_command(app)
    seen: dict[str, set[tuple[str, str, bool, str]]] = {}
    for _name, cmd in click_app.commands.items():  # type: ignore[attr-defined]
        for p in cmd.params:
            for flag in getattr(p, "opts", []):
                if flag in SHARED:
                    seen.setdefault(flag, set()).add((repr(p.type_descriptor.annotation), str(getattr(p, "help", "")), bool(p.multiple),
                                                      repr(p.default) + repr(getattr(p, "envvar", None))))
    for flag in SHARED:
        assert flag in seen, flag
        assert len(seen[flag]) == 1, (f"{flag} is declared in more than one way; use its alias from registry/cli/_options.py "
                                      f"(e.g. TrustOpt, KeyOpt, RegistryOpt)", seen[flag])


def test_commands_print_only_through_one_result() -> None:
    """No command prints its own JSON or text: each builds a Result and the sink renders it (no twin --json branches)."""
    cli = REPO / "registry" / "cli"
    printing = {"emit", "line", "table", "raw"}
    for mod in [*sorted(cli.glob("*_cmds.py")), cli / "_dataset.py"]:
        tree = ast.parse(mod.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
                assert not (node.func.value.id == "out" and node.func.attr in printing), (
                    f"{mod.name}:{node.lineno}: out.{node.func.attr}() in a command; build one Result "
                    "(registry.cli._output.Result: data for --json, .line()/.table() for text) and out.render() it")
            if isinstance(node, ast.If):
                names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)}
                assert names != {"as_json"}, f"{mod.name}:{node.lineno}: a branch on --json alone"


def test_verify_on_an_80_column_terminal(vmafx_copy: Path) -> None:
    """On a real terminal (a pty) of 80 columns: lines fit, only the finding column wraps, ids stay whole."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80", "LINES": "50"}
    p = subprocess.Popen([sys.executable, "-m", "registry", "verify", "--registry", str(vmafx_copy)], stdout=slave,
                         stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert p.wait(60) == 1
    os.close(master)
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    lines = text.splitlines()
    ids = [{"entry": str(m["id"])} for m in json.loads(vmafx_copy.read_text())["models"]]
    assert lines[0].startswith("tinyreg verify: ") and all(len(ln) <= 80 for ln in lines[1:]), text  # the title: one path
    words = set(text.replace(",", " ").split())
    assert {f["entry"] for f in ids} <= words  # every id whole somewhere, never split
    assert any(re.match(r"^ {40,}\S", ln) for ln in lines)  # a wrapped finding continues in its own column


def test_gate_words_fp16_limit_and_nonfinite() -> None:
    @dataclass
    class Fp16Gate:
        entry: str = "dists_vgg16"
        mode: str = "fp16"
        samples: int = 64
        budget: float = 0.001
        drop: float = 1e-6
        drop_ci95: tuple[float, float] = (5e-7, 2e-6)
        plcc: float = 0.999999
        srocc: float = 0.99999
        max_abs_diff: float = 0.02
        passed: bool = False
        max_abs_budget: float = 0.01
        nonfinite: int = 0

    text = gate_words(Fp16Gate())
    assert text.startswith("dists_vgg16 (fp16): drop = 1 - PLCC against fp32 on 64 sample pairs = 1e-06")
    assert "within the budget 0.001" in text and "max |fp16 - fp32| 0.02 (over its limit 0.01)" in text
    assert gate_words(Fp16Gate(nonfinite=3)) == ("dists_vgg16 (fp16): 3 non-finite fp16 outputs on 64 sample pairs, "
                                                 "so no correlation is measured")


def test_hostile_registry_text_in_tables_is_visible_not_executed(reg_path: Path) -> None:
    doc = json.loads(reg_path.read_text())
    doc["models"][0]["license"] = "MIT\x1b[2J\x1b]8;;http://evil\x07click\u202eevil"
    reg_path.write_text(json.dumps(doc))
    from typer.testing import CliRunner

    r = CliRunner().invoke(app, ["list", "--registry", str(reg_path)])
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.stdout and "\u202e" not in r.stdout and "\x07" not in r.stdout
    assert "MIT\\x1b[2J\\x1b]8;;http://evil\\x07click\\u202eevil" in r.stdout


def test_score_line_with_non_finite_scores() -> None:
    assert score_line(ScoreResult("e", "dists", False, "lower is better", [float("nan")])).startswith("DISTS (VGG-16): nan ")
    line = score_line(ScoreResult("e", "dists", False, "lower is better", [float("nan"), 0.1, float("inf")]))
    assert "worst frame 2: inf (max)" in line
    line = score_line(ScoreResult("e", "dists", False, "lower is better", [float("nan"), float("nan")]))
    assert "mean nan over 2 frames" in line and "worst frame" not in line


def test_score_line_says_int8_and_real_frame_numbers() -> None:
    res = ScoreResult("dists_vgg16", "dists", False, "lower is better", [0.1, 0.5, 0.2], indices=[10, 15, 20], int8=True)
    assert score_line(res) == ("DISTS (VGG-16): mean 0.266667 over 3 frames (lower is better \u2193), worst frame 15: 0.5 (max), "
                               "int8, entry dists_vgg16")
