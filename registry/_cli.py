"""The ``tinyreg`` command line: a thin layer over the typed library functions.

Exit codes: 0 clean, 1 findings / check failed, 2 usage or unreadable input.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from registry.errors import EXIT_FINDINGS, EXIT_INTERNAL, EXIT_USAGE, Error

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
        except typer.Exit:
            raise
        except Exception as exc:
            if os.environ.get("TINYREG_DEBUG"):
                raise
            _die(f"internal error ({type(exc).__name__}: {' '.join(str(exc).split())}); "
                 "rerun with TINYREG_DEBUG=1 for a traceback and report it", EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(title), show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(Text(cell) for cell in r))  # literal text: no rich markup from file contents
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


def _progress(label: str) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(f"{label}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True,
                    console=Console(stderr=True))


def _family_hook(family: str, which: str) -> Any:
    from importlib import import_module

    from registry.errors import UsageError
    from registry.families import get_family

    fam = get_family(family)
    spec = getattr(fam, which)
    if not spec:
        raise UsageError(f"family '{family}' has no {which} (only smoke placeholders: tinyreg add {family})")
    mod, _, attr = spec.partition(":")
    try:
        return getattr(import_module(mod), attr)
    except ImportError as exc:
        from registry.errors import MissingDependency

        raise MissingDependency(f"tinyreg {which} {family}", "export") from exc


def _weight_options(family: str, fn: Any, **given: Any) -> dict[str, Any]:
    """The weight options the user gave, refusing those this family's hook does not take."""
    import inspect

    from registry.errors import UsageError

    accepted = inspect.signature(fn).parameters
    out = {k: v for k, v in given.items() if v is not None}
    for k in out:
        if k not in accepted:
            raise UsageError(f"--{k.replace('_', '-')} is not an option of the {family} family")
    return out


@app.command("export")
@command
def export_cmd(
    family: Annotated[str, typer.Argument(help="model family (dists, lpips)")],
    vgg16: Annotated[str | None, typer.Option("--vgg16", help="VGG-16 state dict: PATH or URL (default: upstream URL)")] = None,
    vgg16_sha256: Annotated[str | None, typer.Option(help="pin for a non-upstream --vgg16 file")] = None,
    alpha_beta: Annotated[str | None, typer.Option("--alpha-beta", help="DISTS weights.pt: PATH or URL")] = None,
    alpha_beta_sha256: Annotated[str | None, typer.Option(help="pin for a non-upstream --alpha-beta file")] = None,
    lin: Annotated[str | None, typer.Option("--lin", help="LPIPS v0.1 linear layers (vgg.pth): PATH or URL")] = None,
    lin_sha256: Annotated[str | None, typer.Option(help="pin for a non-upstream --lin file")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset (17..21); never silently another")] = 17,
    entry_id: Annotated[str | None, typer.Option("--id", help="entry id (default: the family's)")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="download cache (default ~/.cache/tinyreg)")] = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export real weights to ONNX and pin the entry (smoke: false)."""
    export = _family_hook(family, "exporter")
    kwargs: dict[str, Any] = {"opset": opset, "entry_id": entry_id, "cache_dir": cache_dir, "progress": sys.stderr.isatty()}
    kwargs.update(_weight_options(family, export, vgg16=vgg16, vgg16_sha256=vgg16_sha256, alpha_beta=alpha_beta,
                                  alpha_beta_sha256=alpha_beta_sha256, lin=lin, lin_sha256=lin_sha256))
    entry = export(_find(registry), **kwargs)
    if as_json:
        _print_json(entry)
    else:
        typer.echo(f"exported {entry['id']} -> {entry['onnx']} (opset {entry['opset']}) sha256 {entry['sha256']}")


@app.command("parity")
@command
def parity_cmd(
    family: Annotated[str, typer.Argument(help="model family (dists, lpips)")],
    entry_id: Annotated[str | None, typer.Option("--id", help="entry id (default: the family's)")] = None,
    vgg16: Annotated[str | None, typer.Option("--vgg16", help="the VGG-16 file the entry was exported from")] = None,
    alpha_beta: Annotated[str | None, typer.Option("--alpha-beta", help="the alpha/beta file it was exported from")] = None,
    lin: Annotated[str | None, typer.Option("--lin", help="the LPIPS linear layers it was exported from")] = None,
    pairs: Annotated[int, typer.Option(help="image pairs per size")] = 20,
    size: Annotated[list[str] | None, typer.Option(help="N or HxW; repeatable (default 256)")] = None,
    tolerance: Annotated[float, typer.Option(help="max absolute difference")] = 1e-5,
    record: Annotated[bool, typer.Option(help="record the result in the entry")] = True,
    cache_dir: Annotated[Path | None, typer.Option(help="download cache")] = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare the entry's ONNX with the reference implementation on natural image pairs."""
    import warnings

    from registry.families import get_family
    from registry.loader import load
    from registry.parity import parse_size, record_parity, run_parity
    from registry.store import read_registry

    fam = get_family(family)
    hook = _family_hook(family, "parity")
    path = _find(registry)
    entry = read_registry(path).get(entry_id or fam.default_id)
    reference, ref_name = hook(entry, cache_dir=cache_dir,
                               **_weight_options(family, hook, vgg16=vgg16, alpha_beta=alpha_beta, lin=lin))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = load(str(entry["id"]), path)
    sizes = [parse_size(s) for s in (size or ["256"])]
    with _progress("parity") as bar:
        task = bar.add_task("parity", total=pairs * len(sizes))
        result = run_parity(session, entry, reference, ref_name, pairs=pairs, sizes=sizes, tolerance=tolerance,
                            progress=lambda done, total: bar.update(task, completed=done))
    if record:
        record_parity(path, result)
    if as_json:
        _print_json(result.as_json())
    else:
        typer.echo(
            f"{'PASS' if result.passed else 'FAIL'}: {result.pairs} pairs ({', '.join(result.sizes)}), "
            f"max |onnx - reference| = {result.max_abs_diff:.3g} (tolerance {result.tolerance:g}), "
            f"identical-image max |score| = {result.identical_max_abs:.3g}; worst: {result.worst_pair}"
        )
    if not result.passed:
        raise typer.Exit(EXIT_FINDINGS)


@app.command("score")
@command
def score_cmd(
    family: Annotated[str, typer.Argument(help="model family (dists, lpips)")],
    ref_image: Annotated[Path | None, typer.Argument(help="reference image")] = None,
    dist_image: Annotated[Path | None, typer.Argument(help="distorted image")] = None,
    ref: Annotated[Path | None, typer.Option("--ref", help="reference video (.y4m)")] = None,
    dist: Annotated[Path | None, typer.Option("--dist", help="distorted video (.y4m)")] = None,
    entry_id: Annotated[str | None, typer.Option("--id", help="entry id (default: the family's)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
    matrix: Annotated[str, typer.Option(help="Y'CbCr matrix for Y4M: auto, bt601, bt709")] = "auto",
    registry: RegistryOpt = None,
) -> None:
    """Score two images, or two Y4M videos frame by frame (scores on stdout)."""
    from registry.errors import UsageError
    from registry.score import score_images, score_videos

    if fmt not in ("json", "csv"):
        raise UsageError("--format must be json or csv")
    path = _find(registry)
    if ref_image and dist_image and not (ref or dist):
        res = score_images(path, family, ref_image, dist_image, entry_id)
    elif ref and dist and not (ref_image or dist_image):
        with _progress("frames") as bar:
            task = bar.add_task("frames", total=None)
            res = score_videos(path, family, ref, dist, entry_id, matrix=matrix,
                               progress=lambda done, total: bar.update(task, completed=done, total=total))
    else:
        raise UsageError("give REF DIST images, or --ref A.y4m --dist B.y4m")
    if res.smoke:
        sys.stderr.write(f"tinyreg: WARNING: '{res.entry}' is a SMOKE PLACEHOLDER with random weights; "
                         "these scores mean nothing\n")
    if fmt == "csv":
        sys.stdout.write(res.csv())
    else:
        _print_json(res.as_json())


@app.command("trust")
@command
def trust_cmd(
    key: Annotated[Path | None, typer.Option("--key", help="ECDSA P-256 public key (PEM) that signs the entries")] = None,
    identity: Annotated[str | None, typer.Option(help="exact certificate identity (SAN) of keyless signatures")] = None,
    issuer: Annotated[str | None, typer.Option(help="exact OIDC issuer of keyless signatures")] = None,
    trusted_root: Annotated[Path | None, typer.Option(help="Sigstore trusted_root.json (default: public-good instance)")] = None,
    staging: Annotated[bool, typer.Option("--staging", help="use the staging instance's trusted root")] = False,
    registry: RegistryOpt = None,
) -> None:
    """Record the signing policy that verify enforces (committed with the registry)."""
    from registry.sign import set_policy

    policy = set_policy(_find(registry), public_key=key, identity=identity, issuer=issuer, trusted_root=trusted_root,
                        staging=staging)
    typer.echo(f"signing policy: {json.dumps(policy, sort_keys=True)}")


@app.command("sign")
@command
def sign_cmd(
    entry_id: Annotated[str | None, typer.Argument(help="entry id")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every entry")] = False,
    key: Annotated[Path | None, typer.Option("--key", help="ECDSA P-256 private key (PEM) for air-gapped signing")] = None,
    identity_token: Annotated[str | None, typer.Option(help="OIDC token (default: ambient CI credentials)")] = None,
    staging: Annotated[bool, typer.Option("--staging", help="sign with the Sigstore staging instance")] = False,
    trust_config: Annotated[Path | None, typer.Option(help="Sigstore client trust config JSON (custom instance)")] = None,
    registry: RegistryOpt = None,
) -> None:
    """Write a Sigstore bundle per entry covering every pinned file (key or keyless)."""
    from registry.sign import sign_entries

    pw = os.environ.get("TINYREG_KEY_PASSWORD")
    written = sign_entries(_find(registry), None if all_ else _need_id(entry_id), key=key,
                           key_password=pw.encode() if pw else None, identity_token=identity_token, staging=staging,
                           trust_config=trust_config)
    for rel in written:
        typer.echo(f"signed -> {rel}")


@app.command("verify-bundle")
@command
def verify_bundle_cmd(
    artifact: Annotated[Path | None, typer.Argument(help="signed file (optional for DSSE bundles)")] = None,
    bundle: Annotated[Path, typer.Option("--bundle", help="Sigstore bundle JSON")] = Path(),
    identity: Annotated[str, typer.Option(help="exact certificate identity (SAN)")] = "",
    issuer: Annotated[str, typer.Option(help="exact OIDC issuer")] = "",
    trusted_root: Annotated[Path | None, typer.Option(help="trusted_root.json (default: public-good instance)")] = None,
    staging: Annotated[bool, typer.Option("--staging", help="use the staging instance's trusted root")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify any Sigstore bundle fully offline against an exact identity and issuer."""
    from registry.errors import UsageError
    from registry.sign import verify_bundle

    if bundle == Path() or not identity or not issuer:
        raise UsageError("verify-bundle needs --bundle, --identity and --issuer")
    res = verify_bundle(bundle, artifact=artifact, identity=identity, issuer=issuer, trusted_root=trusted_root, staging=staging)
    if as_json:
        _print_json(res)
    else:
        subj = f"; subjects: {', '.join(res['subjects'])}" if res.get("subjects") else ""
        typer.echo(f"OK: {bundle} signed by {identity} ({issuer}){subj}")


@app.command("quantize")
@command
def quantize_cmd(
    entry_id: Annotated[str, typer.Argument(help="entry id")],
    mode: Annotated[str | None, typer.Option(help="static or dynamic (default: static, falling back to dynamic)")] = None,
    calibration: Annotated[Path | None, typer.Option(help="folder of images to calibrate with (default: the family's)")] = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write <basename>.int8.onnx if it passes the gate; record mode, calibration and drop."""
    from registry.quant import quantize_entry

    entry = quantize_entry(_find(registry), entry_id, mode=mode, calibration_dir=calibration)
    g = entry["quant"]["gate"]
    if as_json:
        _print_json(entry["quant"])
    else:
        typer.echo(f"{entry_id}: {entry['quant_mode']} int8 -> {entry['onnx'][:-5]}.int8.onnx; drop {g['drop']:.5f} "
                   f"(95% CI {g['drop_ci95'][0]:.5f}..{g['drop_ci95'][1]:.5f}, budget {g['budget']})")


@app.command("quant-gate")
@command
def quant_gate_cmd(
    entry_id: Annotated[str | None, typer.Argument(help="entry id")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every quantised entry")] = False,
    seed: Annotated[int, typer.Option(help="input and bootstrap seed")] = 0,
    record: Annotated[bool, typer.Option(help="record the result in the entry")] = False,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """int8 vs fp32 on representative inputs; pass only if the 95% upper bound of 1 - PLCC is within budget."""
    from registry.quant_cmd import gate

    run = gate(_find(registry), None if all_ else _need_id(entry_id), seed=seed, record=record)
    results = run.results
    if as_json:
        _print_json({"results": [r.as_json() for r in results], "refused": [{"entry": e, "reason": w} for e, w in run.refused],
                     "ok": run.exit_code == 0})
    else:
        for eid, why in run.refused:
            sys.stderr.write(f"tinyreg: {eid}: not gated: {why}\n")
        for r in results:
            typer.echo(f"{'PASS' if r.passed else 'FAIL'} {r.entry} ({r.mode}): drop {r.drop:.5f}, 95% CI "
                       f"{r.drop_ci95[0]:.5f}..{r.drop_ci95[1]:.5f}, budget {r.budget}; PLCC {r.plcc:.5f} SROCC {r.srocc:.5f} "
                       f"max|d| {r.max_abs_diff:.3g} over {r.samples} pairs")
        if not results and not run.refused:
            typer.echo("no quantised entries")
    if run.exit_code:
        raise typer.Exit(run.exit_code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
