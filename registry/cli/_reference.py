"""Generate the CLI reference (docs/cli.md) from the typer app itself, so it cannot drift from ``--help``.

    python -m registry.cli._reference            # rewrite docs/cli.md (``make docs`` runs this)
    python -m registry.cli._reference --check    # exit 1 if docs/cli.md is stale

tests/cli/test_cli_reference.py fails when the file differs from what this renders.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

WIDTH = 100  # fixed, so the text does not depend on the terminal that generated it
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

HEADER = """\
# CLI reference

Generated from the command line itself by `python -m registry.cli._reference` (`make docs`
runs it); `tests/cli/test_cli_reference.py` fails when this page is stale. Do not edit by hand.

Every command takes `--registry PATH` (a `registry.json`, or a folder holding `registry.json` or
`model/tiny/registry.json`); without it the registry is `$TINYREG_REGISTRY` (same rule), else
`registry.json` in the current folder, else `model/tiny/registry.json` in it or any parent.
Every command takes `--json` (one JSON object on stdout with `command` and `ok`, false exactly when
the exit code is not 0; on failure `error` with `message`, `exit_code` and `hint`) and `-h`/`--help`.

One vocabulary: `FAMILY` is an argument of `add` and `export` only; every other command takes an
entry id and reads the family from the entry. Weight files are named by key, never by a
family-specific flag: `--weight KEY=PATH|URL[#SHA256]`, repeatable (a file that is not the
upstream one needs its sha256). Choices (`--mode`, `--profile`, `--format`, `--matrix`,
`--engine`, `--provider`, `FAMILY`) are validated while the command line is parsed, before any
work. Measurements (`parity`, `quant-gate`) write into the entry only with `--record`; commands
that make artifacts (`add`, `export`, `quantize`, `sign`) always record. Text from a registry
(ids, notes, file names) is printed with control characters shown as escapes, never raw.

| exit code | meaning |
|---|---|
| 0 | ok (warnings do not fail) |
| 1 | findings: verify findings, a gate or parity over its limit, an integrity or signature mismatch |
| 2 | bad input or refusal: usage error, unreadable or malformed input, an entry changed under a writer |
| 70 | internal error (a bug; `TINYREG_DEBUG=1` prints the cause chain) |

| environment variable | effect |
|---|---|
| `TINYREG_REGISTRY` | the registry when `--registry` is not given |
| `TINYREG_TRUST` | the consumer trust policy when `--trust` is not given (also read by `registry.load`) |
| `TINYREG_STATE_DIR` | where the last-seen snapshot versions live (default `$XDG_STATE_HOME/tinyreg`) |
| `TINYREG_DEBUG` | `1`: print the full cause chain of an error |
| `TINYREG_THREADS` | threads of each onnxruntime session outside dataset runs (default: one per physical core) |
"""


def _help(args: list[str]) -> str:
    """``tinyreg ARGS --help`` exactly as a user sees it (at a fixed width)."""
    from typer.testing import CliRunner

    from registry.cli import app

    res = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(WIDTH), "TERM": "dumb", "NO_COLOR": "1"},
                             prog_name="tinyreg")
    if res.exit_code != 0:
        raise RuntimeError(f"tinyreg {' '.join(args)} --help exited {res.exit_code}: {res.output}")
    return res.output.rstrip() + "\n"


def _commands(app: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path, in registration order; sub-apps (``tinyreg GROUP CMD``) included."""
    out: list[tuple[str, ...]] = []
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")
        out.append((*prefix, name))
    for group in app.registered_groups:
        if group.typer_instance is not None and group.name:
            out.append((*prefix, group.name))
            out.extend(_commands(group.typer_instance, (*prefix, group.name)))
    return out


def command_paths() -> list[tuple[str, ...]]:
    """The command paths the reference documents (the tests check each has an example)."""
    from registry.cli import app

    return _commands(app)


def render() -> str:
    """The whole reference page as Markdown: the top-level help, then one section per command."""
    parts = [HEADER, "## tinyreg\n", "```text\n" + _help([]) + "```\n"]
    for path in command_paths():
        parts.append(f"## tinyreg {' '.join(path)}\n")
        parts.append("```text\n" + _help(list(path)) + "```\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    rest = [a for a in args if a != "--check"]
    out = Path(rest[0]) if rest else DEFAULT_OUT
    text = render()
    if check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            print(f"{out} is stale: run 'python -m registry.cli._reference' (or 'make docs')", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
