"""The one output sink: the JSON envelope, tables, lines, warnings and progress bars.

A command builds one :class:`Result` (its JSON fields, its text blocks, its verdict) and
hands it to :func:`render`, which prints it as JSON under ``--json`` and as text otherwise;
no command branches on ``--json`` itself.

Text survives pipes and logs: tables are plain aligned columns (no box drawing, no cell
folding). Ids, paths and numbers are never wrapped: when stdout is not a terminal every line
is as long as its content; on a terminal narrower than a table only the free-text columns a
table names (a finding, an error) wrap, and a long line breaks between words. Numbers print
with the digits that matter (:func:`num`).

Every command takes ``--json``. Its stdout is then exactly one JSON object (sorted keys) with
the same envelope: ``command`` (the command's name), ``ok`` (its verdict; false exactly when
the exit code is not 0) and the command's own fields; on an error, ``error`` holds
``message``, ``exit_code`` and, where the CLI knows one, ``hint``. Warnings and the one-line
error on stderr are the same with or without ``--json``; notes (advice a script does not
need) are printed in text mode only.
"""

from __future__ import annotations

import contextvars
import json
import math
import re
import shutil
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import typer

from registry.errors import EXIT_FINDINGS, printable

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


def is_json() -> bool:
    return _json.get()


def warn(msg: str) -> None:
    sys.stderr.write(f"tinyreg: {printable(msg)}\n")


def line(text: str) -> None:
    typer.echo(printable(text))


def raw(text: str) -> None:
    sys.stdout.write(printable(text, keep_newlines=True))


def table(title: str, columns: list[str], rows: list[list[str]], wrap: Iterable[int] = ()) -> None:
    sys.stdout.write("".join(line + "\n" for line in Table(title, columns, rows, frozenset(wrap)).lines(*_terminal())))


def _terminal() -> tuple[int | None, bool]:
    """(width, is a terminal): the width only matters on a terminal (COLUMNS or the tty's size)."""
    tty = sys.stdout.isatty()
    return (shutil.get_terminal_size((200, 24)).columns if tty else None), tty


_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$|^[-+]?(nan|inf)$")


def num(x: float | int | None, digits: int = 4) -> str:
    """A number with the digits that matter: integers as they are, floats to ``digits`` significant digits."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


@dataclass
class Table:
    """Plain aligned columns: numbers right-aligned, text left; only the ``wrap`` columns (free text) ever wrap."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    wrap: frozenset[int] = frozenset()

    def lines(self, width: int | None = None, tty: bool = False) -> list[str]:
        cols = [printable(c) for c in self.columns]
        rows = [[printable(str(c)) for c in r] for r in self.rows]
        n = len(cols)
        widths = [max([len(cols[i]), *(len(r[i]) for r in rows)]) for i in range(n)]
        numeric = [bool(rows) and all(_NUMBER.match(r[i]) or r[i] in ("", "-") for r in rows) for i in range(n)]
        gap = 2
        if tty and width and self.wrap and sum(widths) + gap * (n - 1) > width:
            fixed = sum(w for i, w in enumerate(widths) if i not in self.wrap) + gap * (n - 1)
            room = max(20, (width - fixed) // max(1, len(self.wrap)))
            for i in self.wrap:
                widths[i] = min(widths[i], room)
        out = [printable(self.title)] if self.title else []

        def fmt(cells: Sequence[str]) -> list[str]:
            parts = [textwrap.wrap(c, widths[i], break_long_words=False, break_on_hyphens=False) or [""]
                     if i in self.wrap and len(c) > widths[i] else [c] for i, c in enumerate(cells)]
            height = max(len(p) for p in parts)
            lines = []
            for k in range(height):
                cells_k = [p[k] if k < len(p) else "" for p in parts]
                text = (" " * gap).join(c.rjust(widths[i]) if numeric[i] else c.ljust(widths[i]) for i, c in enumerate(cells_k))
                lines.append(text.rstrip())
            return lines

        out += fmt(cols)
        out.append((" " * gap).join("-" * w for w in widths))
        for r in rows:
            out += fmt(r)
        return out


@dataclass
class Line:
    text: str


@dataclass
class Raw:
    """Text printed as it is (CSV, a config file): newlines kept, control characters escaped."""

    text: str


Block = Line | Table | Raw


@dataclass
class Result:
    """What a command produced: its JSON fields, its text, its verdict; :func:`render` prints one or the other.

    ``warnings`` go to stderr in both modes (a smoke placeholder, a pair that failed);
    ``notes`` only in text mode (advice a script does not need). ``code`` is the exit code
    when the command did not succeed (default: findings, 1).
    """

    data: dict[str, Any] = field(default_factory=dict)
    text: list[Block] = field(default_factory=list)
    ok: bool = True
    code: int | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def line(self, text: str) -> Result:
        self.text.append(Line(text))
        return self

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], wrap: Iterable[int] = ()) -> Result:
        self.text.append(Table(title, columns, rows, frozenset(wrap)))
        return self

    def raw(self, text: str) -> Result:
        self.text.append(Raw(text))
        return self

    @property
    def exit_code(self) -> int:
        if self.code is not None:
            return self.code
        return 0 if self.ok else EXIT_FINDINGS


def text_of(res: Result, width: int | None = None, tty: bool = False) -> str:
    """The text rendering of ``res`` (stdout only)."""
    parts: list[str] = []
    for b in res.text:
        if isinstance(b, Table):
            parts += [ln + "\n" for ln in b.lines(width, tty)]
        elif isinstance(b, Raw):
            parts.append(printable(b.text, keep_newlines=True))
        elif tty and width and len(printable(b.text)) > width:
            # a long line on a terminal breaks between words, never inside an id, a path or a number
            parts += [ln + "\n" for ln in textwrap.wrap(printable(b.text), width, subsequent_indent="  ",
                                                        break_long_words=False, break_on_hyphens=False)]
        else:
            parts.append(printable(b.text) + "\n")
    return "".join(parts)


def render(res: Result) -> None:
    """Print ``res`` as JSON (``--json``) or text, its warnings on stderr, and exit with its code when it is not 0."""
    for w in res.warnings:
        warn(w)
    if _json.get():
        emit(res.data, ok=res.exit_code == 0)
    else:
        for n in res.notes:
            warn(n)
        sys.stdout.write(text_of(res, *_terminal()))
    if res.exit_code:
        raise typer.Exit(res.exit_code)


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
