"""The one output sink: JSON documents, tables, lines, warnings and progress bars."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from registry.errors import printable

# Every human-readable byte goes through ``printable``: registry text (ids, notes, file
# names) can hold terminal escapes (ESC[2J, OSC 8 links), shown here as visible escapes.
# JSON output escapes them by itself (ensure_ascii).


def die(msg: str, code: int) -> None:
    sys.stderr.write(f"tinyreg: {printable(msg)}\n")
    raise typer.Exit(code)


def warn(msg: str) -> None:
    sys.stderr.write(f"tinyreg: {printable(msg)}\n")


def line(text: str) -> None:
    typer.echo(printable(text))


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True) + "\n")


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

    return Progress(printable(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
                    console=Console(stderr=True))


def rate_progress(label: str, unit: str = "frames") -> Any:
    """A progress bar on stderr with done/total, the rate in ``unit``/s and the time left."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:.2f} {unit}/s" if task.speed else f"- {unit}/s")

    return Progress(label, BarColumn(), MofNCompleteColumn(), Rate(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)
