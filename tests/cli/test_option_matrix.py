"""Never ignore an option: every option of every command is honoured or refused, in every mode (issue 16 item 7).

The tables below hold a row for every parameter of every command, read from the typer app itself
(``typer.main.get_command``): a new option without a row fails ``test_every_option_has_a_row``.
``score`` has three modes (an image pair, videos, a dataset); each of its options either applies to a
mode or is refused there with one line saying where it applies, and every refusal is run here. Modal
options of other commands (key vs keyless) are run too. Every other option must at least be read by
its command (a parameter its function never reads is an ignored option).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer.main
from PIL import Image
from typer.testing import CliRunner

from registry.cli import app
from registry.cli.model_cmds import DATASET, IMAGES, SCORE_MODES, VIDEOS

ALL = {IMAGES, VIDEOS, DATASET}
FRAMES = {VIDEOS, DATASET}

# score: parameter -> (modes that honour it, a value to give it on the command line, or None for a flag/argument)
SCORE: dict[str, tuple[set[str], list[str]]] = {
    "entry_id": (ALL, []), "registry": (ALL, []), "as_json": (ALL, ["--json"]), "fmt": (ALL, ["--format", "csv"]),
    "int8": (ALL, ["--int8"]), "precision": (ALL, ["--precision", "fp16"]), "provider": (ALL, ["--provider", "cuda"]),
    "max_pixels": (ALL, ["--max-pixels", "100000"]), "max_memory": (ALL, ["--max-memory", "8G"]),
    "ref_image": ({IMAGES}, []), "dist_image": ({IMAGES}, []), "ref": ({VIDEOS}, ["--ref", "a.y4m"]),
    "dist": ({VIDEOS}, ["--dist", "b.y4m"]), "matrix": (FRAMES, ["--matrix", "bt709"]), "start": (FRAMES, ["--start", "1"]),
    "frames": (FRAMES, ["--frames", "1"]), "every": (FRAMES, ["--every", "2"]), "scale": (FRAMES, ["--scale", "ref"]),
    "manifest": ({DATASET}, ["--manifest", "m.csv"]), "results": ({DATASET}, ["--out", "o.jsonl"]),
    "engine": ({DATASET}, ["--engine", "ray"]), "workers": ({DATASET}, ["--workers", "2"]),
    "shard": ({DATASET}, ["--shard", "0/2"]),
    "ray_address": ({DATASET}, ["--ray-address", "auto"]), "retry_errors": ({DATASET}, ["--retry-errors"]),
    "trust": (ALL, ["--trust", "policy.json"]),
}

# other commands: parameter -> where it is honoured (and, for modal options, checked below)
OTHERS: dict[str, dict[str, str]] = {
    "add": dict.fromkeys(("family", "registry", "entry_id", "opset", "force", "as_json"), "always"),
    "check-ops": dict.fromkeys(("target", "allowlist", "profile", "emit_ort_config", "registry", "as_json"), "always"),
    "export": dict.fromkeys(("family", "weight", "opset", "entry_id", "cache_dir", "registry", "as_json"), "always"),
    "hook": dict.fromkeys(("check", "registry", "as_json"), "always"),
    "init": dict.fromkeys(("folder", "as_json"), "always"),
    "list": dict.fromkeys(("registry", "as_json"), "always"),
    "migrate": dict.fromkeys(("dry_run", "skip_missing", "registry", "as_json"), "always"),
    "parity": dict.fromkeys(("entry_id", "weight", "pairs", "size", "tolerance", "record", "cache_dir", "registry", "trust", "as_json"),
                            "always"),
    "pull": dict.fromkeys(("ref", "trust", "unverified", "entry", "plain_http", "timeout", "cache_dir", "registry", "as_json"), "always"),
    "push": dict.fromkeys(("entry_id", "ref", "unsigned", "trust", "plain_http", "timeout", "registry", "as_json"), "always"),
    "recover": dict.fromkeys(("discard", "registry", "trust", "as_json"), "always"),
    "report": {**dict.fromkeys(("results", "out_file", "registry", "as_json"), "always"),
               "trust": "registry report only: refused (given on the command line) with RESULTS"},
    "pin": dict.fromkeys(("entry_id", "all_", "check", "registry", "as_json"), "always"),
    "quant-gate": dict.fromkeys(("entry_id", "all_", "seed", "record", "inputs", "precision", "registry", "trust", "as_json"),
                                "always"),
    "quantize": dict.fromkeys(("entry_id", "mode", "calibration", "inputs", "registry", "trust", "as_json"), "always"),
    "show": dict.fromkeys(("entry_id", "registry", "as_json"), "always"),
    "sign": {**dict.fromkeys(("entry_id", "all_", "key", "expires_in", "registry", "as_json"), "always"),
             **dict.fromkeys(("identity_token", "staging", "trust_config"), "keyless only: refused with --key")},
    "trust": {**dict.fromkeys(("key", "identity", "issuer", "out_file", "registry", "as_json"), "always"),
              "trusted_root": "keyless only: refused with keys alone", "staging": "keyless only: refused with keys alone",
              "replace": "--out only: refused without it"},
    "verify": dict.fromkeys(("registry", "allowlist", "trust", "as_json"), "always"),
    "verify-bundle": {**dict.fromkeys(("artifact", "bundle", "key", "identity", "issuer", "as_json"), "always"),
                      "trusted_root": "keyless only: refused with --key", "staging": "keyless only: refused with --key"},
}

COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]


def params(name: str) -> set[str]:
    return {str(p.name) for p in COMMANDS[name].params}


def test_every_option_has_a_row() -> None:
    assert set(COMMANDS) == {"score", *OTHERS}, "a command without a table: add it to OTHERS"
    assert params("score") == set(SCORE) == set(SCORE_MODES), "score: every option needs a row here and in SCORE_MODES"
    for name, row in OTHERS.items():
        missing, stale = params(name) - set(row), set(row) - params(name)
        assert not missing and not stale, f"{name}: options without a row {missing}, rows without an option {stale}"


def test_score_table_is_the_one_the_command_enforces() -> None:
    assert {k: set(v[0]) for k, v in SCORE.items()} == {k: set(v) for k, v in SCORE_MODES.items()}


def _reads(fn: Any) -> set[str]:
    """Names the body of ``fn`` reads (the signature excluded)."""
    fn = inspect.unwrap(fn)
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    body = tree.body[0]
    assert isinstance(body, ast.FunctionDef)
    return {n.id for stmt in body.body for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_parameter_is_read_by_its_command(name: str) -> None:
    """A parameter its command never reads is an option silently ignored (``as_json`` is read by the error boundary)."""
    read = _reads(COMMANDS[name].callback)
    unread = sorted(p for p in params(name) - read if p != "as_json")
    assert unread == [], f"{name}: {unread} are never read"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from registry.media.y4m import write_y4m

    d = tmp_path_factory.mktemp("matrix")
    rng = np.random.default_rng(0)
    for n in ("r.png", "d.png"):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(d / n)
    for n in ("a.y4m", "b.y4m"):
        write_y4m(d / n, [rng.random((32, 32, 3), dtype=np.float32)])
    (d / "m.csv").write_text("a.y4m,b.y4m\n")
    return d


MODE_ARGS = {IMAGES: ["r.png", "d.png"], VIDEOS: ["--ref", "a.y4m", "--dist", "b.y4m"],
             DATASET: ["--manifest", "m.csv", "--out", "o.jsonl"]}


def _run(folder: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(folder)
    return CliRunner().invoke(app, args)


@pytest.mark.slow
@pytest.mark.parametrize(("param", "mode"), [(p, m) for p, (modes, _) in sorted(SCORE.items()) for m in sorted(ALL - modes)])
def test_score_refuses_where_an_option_does_not_apply(param: str, mode: str, inputs: Path, reg_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, value = SCORE[param]
    given = value or (["r.png", "d.png"] if param in ("ref_image", "dist_image") else [])
    base = MODE_ARGS[mode]
    if param in ("ref_image", "dist_image"):
        args = ["score", "dists_vgg16", *given, *base, "--registry", str(reg_path)]
    else:
        args = ["score", "dists_vgg16", *base, *given, "--registry", str(reg_path)]
    r = _run(inputs, args, monkeypatch)
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1, (args, r.exit_code, r.stderr)
    # --ref/--dist/--manifest choose the mode: given elsewhere, the other mode's inputs are refused (refused either way)
    flips = param in ("ref", "dist", "manifest")  # the options that choose the mode
    assert "applies to" in lines[0] and (flips or f"not to {mode}" in lines[0]), lines[0]
    assert not (inputs / "o.jsonl").exists()


@pytest.mark.parametrize(("args", "words"), [
    (["sign", "--all", "--key", "k.pem", "--staging"], "apply to keyless signing"),
    (["sign", "--all", "--key", "k.pem", "--identity-token", "t"], "apply to keyless signing"),
    (["sign", "--all", "--key", "k.pem", "--trust-config", "c.json"], "apply to keyless signing"),
    (["trust", "--key", "k.pub.pem", "--replace"], "--replace applies to a consumer trust policy"),
    (["trust", "--key", "k.pub.pem", "--out", "p.json", "--staging"], "apply to keyless anchors"),
    (["verify-bundle", "x", "--bundle", "b.json", "--key", "k.pub.pem", "--staging"], "apply to keyless bundles"),
    (["verify-bundle", "x", "--bundle", "b.json", "--key", "k.pub.pem", "--trusted-root", "r.json"], "apply to keyless bundles"),
    (["report", "x", "--out", "p.json", "--trust", "b.json"], "--trust is for the registry report"),
])
def test_modal_options_of_other_commands_are_refused(args: list[str], words: str, reg_path: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.factories import keypair

    keypair(tmp_path, "k")
    (tmp_path / "b.json").write_text("{}")
    (tmp_path / "x").write_text("x")
    r = _run(tmp_path, [*args, *(["--registry", str(reg_path)] if args[0] in ("sign", "trust") else [])], monkeypatch)
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and words in lines[0], (args, r.exit_code, r.stderr)
    assert not (tmp_path / "p.json").exists()
