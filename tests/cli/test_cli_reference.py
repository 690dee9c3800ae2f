"""docs/cli.md is generated from the typer app and must not drift from ``--help``; every command has an example."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from registry.cli import _examples, _reference, app

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "python -m registry.cli._reference  (or: make docs)"


@functools.cache
def rendered() -> str:
    return _reference.render()


@pytest.mark.slow
def test_cli_reference_is_current() -> None:
    page = REPO / "docs" / "cli.md"
    assert page.is_file(), f"docs/cli.md is missing: {REGENERATE}"
    assert page.read_text(encoding="utf-8") == rendered(), f"docs/cli.md is stale: {REGENERATE}"


@pytest.mark.slow
def test_check_mode_fails_on_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text(rendered().replace("tinyreg verify", "tinyreg verifyy", 1))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "registry.cli._reference", "--check", str(stale)], capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "stale" in p.stderr
    assert subprocess.run([sys.executable, "-m", "registry.cli._reference", str(stale)], env=env, capture_output=True).returncode == 0
    assert subprocess.run([sys.executable, "-m", "registry.cli._reference", "--check", str(stale)], env=env).returncode == 0


def test_reference_covers_every_command() -> None:
    text = rendered()
    names = [" ".join(p) for p in _reference.command_paths()]
    assert {"init", "add", "export", "score", "verify", "sign", "hook"} <= set(names)
    for name in names:
        assert f"## tinyreg {name}\n" in text


@pytest.mark.parametrize("path", [" ".join(p) for p in _reference.command_paths()])
def test_every_command_has_an_example_in_its_help(path: str) -> None:
    assert _examples.EXAMPLES.get(path), f"add an example for 'tinyreg {path}' to registry/cli/_examples.py"
    r = CliRunner().invoke(app, [*path.split(), "-h"])
    assert r.exit_code == 0, r.output
    assert "Examples:" in r.output and f"tinyreg {path}" in r.output.split("Examples:")[1]


def test_examples_name_real_commands_and_options() -> None:
    """An example that names a command or an option the CLI does not have would mislead: parse each one."""
    import shlex

    known = {" ".join(p) for p in _reference.command_paths()}
    assert set(_examples.EXAMPLES) == known
    for cmd, lines in _examples.EXAMPLES.items():
        help_text = _reference._help(cmd.split())
        for line in lines:
            words = shlex.split(line, comments=True)
            assert words[0] == "tinyreg" and " ".join(words[1:1 + len(cmd.split())]) == cmd, line
            for w in words:
                if w.startswith("--"):
                    assert w.split("=")[0] in help_text, f"{line}: {w} is not an option of 'tinyreg {cmd}'"


def test_version_and_short_help() -> None:
    from registry import __version__

    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"tinyreg {__version__}"
    short, long = CliRunner().invoke(app, ["-h"]), CliRunner().invoke(app, ["--help"])
    assert short.exit_code == long.exit_code == 0 and short.output == long.output
