"""``tinyreg report``: one self-contained HTML page of a results file or of a registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from registry.cli import _output as out
from registry.cli._errors import command
from registry.cli._options import JsonOpt, RegistryOpt, TrustOpt
from registry.cli._output import Result


@command
def report_cmd(
    ctx: typer.Context,
    results: Annotated[Path | None, typer.Argument(help="a results file of 'score --manifest' (default: report the registry)",
                                                   show_default=False)] = None,
    out_file: Annotated[Path, typer.Option("--out", help="the HTML file to write (one file; it loads nothing)")] = Path(),
    registry: RegistryOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write one self-contained HTML report: per-pair curves of a results file, or every entry of a registry."""
    from registry.errors import UsageError
    from registry.report.build import registry_report, results_report

    if out_file == Path():
        raise UsageError("report needs --out FILE.html")
    if results is not None:
        if trust is not None and _given(ctx, "trust"):
            raise UsageError("--trust is for the registry report; a results file report takes no trust policy")
        w = results_report(results, out_file, registry=registry)
        direction = f"; {w.direction}" if w.direction else "; direction unknown (no worst frame marked)"
        text = f"wrote {w.out}: {w.pairs} pairs ({w.failed} failed), {w.frames} frames{direction}"
    else:
        w = registry_report(registry, out_file, trust=trust)
        text = (f"wrote {w.out}: {w.entries} entries of {w.source}; verify {'OK' if w.ok else 'FAILED'}"
                + ("" if trust else "; signatures not checked against a consumer policy (--trust FILE)"))
    out.render(Result(w.as_json()).line(text))


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the option was given on the command line (an environment default such as TINYREG_TRUST is not)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"
