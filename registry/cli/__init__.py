"""The ``tinyreg`` command line: this module only wires command groups to the app.

Each group lives in its own module over typed library functions; options shared by
groups are in ``_options``, all output goes through ``_output``, and ``_errors`` is
the one error boundary. Exit codes: 0 clean, 1 findings / check failed, 2 usage or
unreadable input, 70 internal error.
"""

from __future__ import annotations

from typing import Annotated

import typer

from registry.cli import (
    _examples,
    hook_cmds,
    migrate_cmds,
    model_cmds,
    oci_cmds,
    quant_cmds,
    registry_cmds,
    report_cmds,
    sign_cmds,
)

app = typer.Typer(
    name="tinyreg",
    help="Registry and artifact toolchain for tiny ONNX image and video quality models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 ok, 1 findings, 2 bad input or refusal, 70 a bug. "
           "Registry: --registry PATH, else $TINYREG_REGISTRY, else found from the current folder.",
)


def _version(value: bool) -> None:
    if value:
        from registry._internal.version import __version__

        typer.echo(f"tinyreg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Registry and artifact toolchain for tiny ONNX image and video quality models."""

for _name, _fn in (
    ("init", registry_cmds.init_cmd),
    ("list", registry_cmds.list_cmd),
    ("show", registry_cmds.show_cmd),
    ("pin", registry_cmds.pin_cmd),
    ("check-ops", registry_cmds.check_ops_cmd),
    ("verify", registry_cmds.verify_cmd),
    ("recover", registry_cmds.recover_cmd),
    ("migrate", migrate_cmds.migrate_cmd),
    ("add", model_cmds.add_cmd),
    ("export", model_cmds.export_cmd),
    ("parity", model_cmds.parity_cmd),
    ("score", model_cmds.score_cmd),
    ("quantize", quant_cmds.quantize_cmd),
    ("quant-gate", quant_cmds.quant_gate_cmd),
    ("trust", sign_cmds.trust_cmd),
    ("sign", sign_cmds.sign_cmd),
    ("verify-bundle", sign_cmds.verify_bundle_cmd),
    ("push", oci_cmds.push_cmd),
    ("pull", oci_cmds.pull_cmd),
    ("report", report_cmds.report_cmd),
):
    app.command(_name, epilog=_examples.epilog(_name))(_fn)

# the pre-commit entry point passes options it does not know (e.g. --trust FILE) on to the check
app.command("hook", context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
            epilog=_examples.epilog("hook"))(hook_cmds.hook_cmd)


def main() -> None:
    app()


__all__ = ["app", "main"]
