"""Option aliases and argument helpers shared by every command group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

RegistryOpt = Annotated[
    Path | None,
    typer.Option("--registry", help="registry.json or its folder (default: found from the current folder)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
AllOpt = Annotated[bool, typer.Option("--all", help="every entry")]
EntryIdArg = Annotated[str | None, typer.Argument(help="entry id")]
AllowlistOpt = Annotated[Path | None, typer.Option(help="allowlist JSON (default: the built-in one)")]


def find(registry: Path | None) -> Path:
    from registry.store.document import find_registry

    return find_registry(registry)


def need_id(entry_id: str | None) -> str:
    from registry.errors import UsageError

    if not entry_id:
        raise UsageError("name an entry id or pass --all")
    return entry_id
