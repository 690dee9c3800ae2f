"""``tinyreg hook verify|pin-check``: the pre-commit entry points (see .pre-commit-hooks.yaml)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from registry.cli import _output as out
from registry.cli._errors import command
from registry.cli._options import JsonOpt, RegistryOpt, find
from registry.cli._output import Result


class HookCheck(StrEnum):
    VERIFY = "verify"
    PIN_CHECK = "pin-check"


_CHECKS = {HookCheck.VERIFY: ["verify"], HookCheck.PIN_CHECK: ["pin", "--all", "--check"]}


@command
def hook_cmd(
    ctx: typer.Context,
    check: Annotated[HookCheck, typer.Argument(help="the check to run", show_default=False)],
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a check on the registry as it is being committed (the index, exported), when the staged changes touch it.

    Options after the check's name that this command does not know (e.g. --trust FILE) are
    passed on to it.
    """
    from typer.main import get_command

    from registry.cli import app
    from registry.errors import UsageError
    from registry.precommit import registry_touched, staged_tree

    path = find(registry)
    t = registry_touched(path)
    if not t.touched:
        out.warn(f"{check.value}: skipped, {t.reason}")
        out.render(Result({"check": check.value, "skipped": True, "reason": t.reason}))
        return
    out.warn(f"{check.value}: {t.reason}; checking the registry as it is being committed")
    with staged_tree(path) as staged:  # the index (or the pushed tree), never the working tree
        try:
            code = get_command(app).main([*_CHECKS[check], "--registry", str(staged), *(["--json"] if as_json else []), *ctx.args],
                                         prog_name="tinyreg",
                                         standalone_mode=False)
        except Exception as exc:  # an option the check does not take either (typer's vendored click UsageError)
            fmt = getattr(exc, "format_message", None)
            if not callable(fmt):
                raise
            raise UsageError(f"tinyreg {' '.join(_CHECKS[check])}: {fmt()}") from exc
    if isinstance(code, int) and code != 0:
        raise typer.Exit(code)
