"""The ``tinyreg`` command line: a thin layer over the typed library functions.

Exit codes: 0 clean, 1 findings / check failed, 2 usage or unreadable input.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from registry.errors import EXIT_FINDINGS, EXIT_USAGE, Error

app = typer.Typer(
    name="tinyreg",
    help="Registry and artifact toolchain for tiny ONNX quality models (DISTS, LPIPS, ...).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])

RegistryOpt = Annotated[
    Path | None,
    typer.Option("--registry", help="registry.json or its folder (default: found from the current folder)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _die(msg: str, code: int) -> None:
    sys.stderr.write(f"tinyreg: {msg}\n")
    raise typer.Exit(code)


def command(fn: F) -> F:
    """Turn tinyreg errors into one line on stderr and their exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Error as exc:
            _die(exc.diagnostics(), exc.exit_code)
        except KeyboardInterrupt:
            _die("interrupted", 130)
        except (OSError, ValueError) as exc:
            _die(" ".join(str(exc).split()) or type(exc).__name__, EXIT_USAGE)

    return wrapper  # type: ignore[return-value]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*r)
    Console().print(t)


def _find(registry: Path | None) -> Path:
    from registry.store import find_registry

    return find_registry(registry)


@app.command("init")
@command
def init_cmd(folder: Annotated[Path, typer.Argument(help="folder to hold registry.json")] = Path("model/tiny")) -> None:
    """Create an empty schema_version 2 registry in FOLDER."""
    from registry.store import init_registry

    path = init_registry(folder)
    typer.echo(f"created {path}")


@app.command("list")
@command
def list_cmd(registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """List the entries of the registry."""
    from registry.store import read_registry

    reg = read_registry(_find(registry))
    rows = [
        {
            "id": e.get("id"),
            "kind": e.get("kind"),
            "family": e.get("family"),
            "smoke": bool(e.get("smoke", False)),
            "onnx": e.get("onnx"),
            "opset": e.get("opset"),
            "quant_mode": e.get("quant_mode", "fp32"),
            "signed": bool(e.get("sigstore_bundle")),
            "license": e.get("license"),
        }
        for e in sorted(reg.entries, key=lambda e: str(e.get("id")))
    ]
    if as_json:
        _print_json({"registry": str(reg.path), "schema_version": reg.schema_version, "models": rows})
        return
    _table(
        f"{reg.path} (schema_version {reg.schema_version})",
        ["id", "kind", "smoke", "onnx", "opset", "quant", "signed", "license"],
        [[str(r["id"]), str(r["kind"]), "SMOKE" if r["smoke"] else "", str(r["onnx"]), str(r["opset"] or ""),
          str(r["quant_mode"]), "yes" if r["signed"] else "", str(r["license"] or "")] for r in rows],
    )


@app.command("show")
@command
def show_cmd(entry_id: str, registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """Show one entry."""
    from registry.store import read_registry

    entry = read_registry(_find(registry)).get(entry_id)
    if as_json:
        _print_json(entry)
        return
    if entry.get("smoke") is True:
        typer.echo("WARNING: smoke placeholder (random weights; scores mean nothing)")
    for k in sorted(entry):
        v = entry[k]
        typer.echo(f"{k}: {json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v}")


@app.command("add")
@command
def add_cmd(
    family: Annotated[str, typer.Argument(help="model family: dists, lpips, ...")],
    registry: RegistryOpt = None,
    entry_id: Annotated[str | None, typer.Option("--id", help="entry id (default: the family's)")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset of the placeholder")] = 17,
    force: Annotated[bool, typer.Option("--force", help="replace a real model by the placeholder")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a family's smoke placeholder ONNX and its registry entry."""
    from registry.smoke import add_smoke

    entry = add_smoke(_find(registry), family, entry_id=entry_id, opset=opset, force=force)
    if as_json:
        _print_json(entry)
    else:
        typer.echo(f"added {entry['id']} (smoke placeholder) -> {entry['onnx']} sha256 {entry['sha256']}")


@app.command("pin")
@command
def pin_cmd(
    entry_id: Annotated[str | None, typer.Argument(help="entry id")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every entry")] = False,
    check: Annotated[bool, typer.Option("--check", help="change nothing; exit 1 if anything would change")] = False,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute sha256, sizes and opset of entries from their files."""
    from registry.pin_cmd import pin

    changes = pin(_find(registry), None if all_ else _need_id(entry_id), check=check)
    if as_json:
        _print_json({"changes": changes, "check": check})
    else:
        for eid, fields in sorted(changes.items()):
            typer.echo(f"{eid}: {'would change' if check else 'updated'} {', '.join(fields)}")
        if not changes:
            typer.echo("all pins up to date")
    if check and changes:
        raise typer.Exit(EXIT_FINDINGS)


def _need_id(entry_id: str | None) -> str:
    from registry.errors import UsageError

    if not entry_id:
        raise UsageError("name an entry id or pass --all")
    return entry_id


@app.command("check-ops")
@command
def check_ops_cmd(
    target: Annotated[str | None, typer.Argument(help="MODEL.onnx or an entry id")] = None,
    allowlist: Annotated[Path | None, typer.Option(help="allowlist JSON (default: the built-in one)")] = None,
    profile: Annotated[str | None, typer.Option(help="fp32 or int8 (default: from the file name)")] = None,
    emit_ort_config: Annotated[
        str | None, typer.Option("--emit-ort-config", metavar="PROFILE", help="print the ORT reduced-operator config")
    ] = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a graph against the op allowlist."""
    from registry.allowlist import load_allowlist, ort_reduced_config
    from registry.ops import check_target

    allow = load_allowlist(allowlist)
    if emit_ort_config:
        sys.stdout.write(ort_reduced_config(allow, emit_ort_config))
        return
    results = check_target(_need_id(target), allow, profile, registry)
    bad = False
    out = []
    for res in results:
        errs = [v for v in res.violations if v.severity == "error"]
        bad = bad or bool(errs)
        out.append({"model": res.model, "profile": res.profile, "ok": not errs,
                    "ops": sorted(f"{d}:{o}" for d, o in res.ops),
                    "violations": [v.as_json() for v in res.violations]})
        if not as_json:
            for v in res.violations:
                typer.echo(f"{res.model}: {v.severity}: {v}")
            if not errs:
                typer.echo(f"{res.model}: ok ({len(res.ops)} op types, profile {res.profile})")
    if as_json:
        _print_json({"results": out, "ok": not bad})
    if bad:
        raise typer.Exit(EXIT_FINDINGS)


@app.command("verify")
@command
def verify_cmd(
    registry: RegistryOpt = None,
    allowlist: Annotated[Path | None, typer.Option(help="allowlist JSON (default: the built-in one)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The pre-merge gate: pins, schema, paths, graphs, allowlist, sidecars, cards, signatures."""
    from registry.verify import verify_registry

    report = verify_registry(_find(registry), allowlist=allowlist)
    if as_json:
        _print_json(report.as_json())
    else:
        if report.findings:
            _table(
                f"tinyreg verify: {report.registry}",
                ["severity", "entry", "check", "finding"],
                [[f.severity, f.entry, f.check, f.message] for f in sorted(report.findings, key=lambda f: (f.entry, f.check, f.message))],
            )
        n_err = len(report.errors)
        n_warn = len(report.findings) - n_err
        verdict = "OK" if report.ok else "FAILED"
        typer.echo(
            f"{verdict}: {report.entries} entries, {report.checked_files} files checked, "
            f"{n_err} errors, {n_warn} warnings (schema_version {report.schema_version})"
        )
    if not report.ok:
        raise typer.Exit(EXIT_FINDINGS)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
