"""The one output sink: the JSON envelope, tables, lines, warnings and progress bars.

Every command takes ``--json``. Its stdout is then exactly one JSON object (sorted keys) with
the same envelope: ``command`` (the command's name), ``ok`` (its verdict; false exactly when
the exit code is not 0) and the command's own fields; on an error, ``error`` holds
``message``, ``exit_code`` and, where the CLI knows one, ``hint``. Human output and the
one-line error on stderr are the same with or without ``--json``.
"""

from __future__ import annotations

import contextvars
import json
import sys
from collections.abc import Mapping
from typing import Any

import typer

from registry.errors import printable

ENVELOPE_KEYS = ("command", "ok")
_command: contextvars.ContextVar[str] = contextvars.ContextVar("tinyreg_command", default="tinyreg")
_json: contextvars.ContextVar[bool] = contextvars.ContextVar("tinyreg_json", default=False)

# Every human-readable byte goes through ``printable``: registry text (ids, notes, file
# names) can hold terminal escapes (ESC[2J, OSC 8 links), shown here as visible escapes.
# JSON output escapes them by itself (ensure_ascii).


def begin(command: str, as_json: bool) -> None:
    """Called by the error boundary before a command runs."""
    _command.set(command)
    _json.set(as_json)


def envelope(payload: Mapping[str, Any], *, ok: bool) -> dict[str, Any]:
    clash = sorted(set(payload) & set(ENVELOPE_KEYS))
    if clash:
        raise ValueError(f"payload field {clash[0]!r} is reserved for the envelope")
    return {"command": _command.get(), "ok": ok, **payload}


def emit(payload: Mapping[str, Any], *, ok: bool = True) -> None:
    """Print the command's JSON document (non-ASCII and control characters escaped by JSON itself)."""
    sys.stdout.write(json.dumps(envelope(payload, ok=ok), indent=2, sort_keys=True, ensure_ascii=True) + "\n")


def die(msg: str, code: int, hint: str | None = None, extra: Mapping[str, Any] | None = None) -> None:
    """One line on stderr and exit ``code``; under ``--json`` also the envelope with ``error`` (and ``extra`` fields)."""
    if _json.get():
        err: dict[str, Any] = {"message": msg, "exit_code": code}
        if hint:
            err["hint"] = hint
        emit({**{k: v for k, v in (extra or {}).items() if k not in ENVELOPE_KEYS}, "error": err}, ok=False)
    text = f"{msg} ({hint})" if hint else msg
    sys.stderr.write(f"tinyreg: {printable(text)}\n")
    raise typer.Exit(code)


def warn(msg: str) -> None:
    sys.stderr.write(f"tinyreg: {printable(msg)}\n")


def line(text: str) -> None:
    typer.echo(printable(text))


def raw(text: str) -> None:
    sys.stdout.write(printable(text, keep_newlines=True))


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(printable(title)), show_lines=False)
    for c in columns:
        t.add_column(printable(c), overflow="fold")
    for r in rows:
        t.add_row(*(Text(printable(cell)) for cell in r))  # literal text: no rich markup, no escapes from file contents
    Console().print(t)


def progress(label: str) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    # no bar where stderr is not a terminal: rich would leave an empty line beside a failure's one line
    return Progress(printable(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
                    console=Console(stderr=True), disable=not sys.stderr.isatty())


def rate_progress(label: str, unit: str = "frames") -> Any:
    """A progress bar on stderr with done/total, the rate in ``unit``/s and the time left."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:.2f} {unit}/s" if task.speed else f"- {unit}/s")

    return Progress(label, BarColumn(), MofNCompleteColumn(), Rate(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty())
