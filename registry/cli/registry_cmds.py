"""Commands over the registry file: init, list, show, pin, check-ops, verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from registry.cli import _output as out
from registry.cli._errors import command
from registry.cli._options import (
    AllOpt,
    AllowlistOpt,
    EntryIdArg,
    JsonOpt,
    OptionalEntryIdArg,
    Profile,
    RegistryOpt,
    TrustOpt,
    find,
    need_id,
)
from registry.cli._output import Result
from registry.store.types import is_smoke


@command
def init_cmd(folder: Annotated[Path | None, typer.Argument(
                 help="folder to hold registry.json (default: $TINYREG_REGISTRY if set, else model/tiny)", show_default=False)] = None,
             as_json: JsonOpt = False) -> None:
    """Create an empty schema_version 2 registry in FOLDER."""
    from registry.store.document import default_init_folder, init_registry

    path = init_registry(default_init_folder() if folder is None else folder)
    out.render(Result({"registry": str(path)}).line(f"created {path}"))


@command
def list_cmd(registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """List the entries of the registry."""
    from registry.signing.state import SIGNED, signature_state
    from registry.store.document import read_registry

    reg = read_registry(find(registry))
    sig = {id(e): signature_state(reg, e) for e in reg.entries}  # what verify would find, never the row's claim
    rows = [
        {
            "id": e.get("id"),
            "kind": e.get("kind"),
            "family": e.get("family"),
            "smoke": bool(e.get("smoke", False)),
            "onnx": e.get("onnx"),
            "opset": e.get("opset"),
            "quant_mode": e.get("quant_mode", "fp32"),
            "signed": sig[id(e)] == SIGNED,
            "signature": sig[id(e)],
            "license": e.get("license"),
        }
        for e in sorted(reg.entries, key=lambda e: str(e.get("id")))
    ]
    res = Result({"registry": str(reg.path), "schema_version": reg.schema_version, "models": rows})
    res.table(
        f"{reg.path} (schema_version {reg.schema_version}, {len(rows)} entries)",
        ["id", "kind", "smoke", "onnx", "opset", "quant", "signed", "license"],
        [[str(r["id"]), str(r["kind"]), "SMOKE" if r["smoke"] else "", str(r["onnx"]), str(r["opset"] or ""),
          str(r["quant_mode"]), str(r["signature"]), str(r["license"] or "")] for r in rows],
    )
    out.render(res)


@command
def show_cmd(entry_id: EntryIdArg, registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """Show one entry."""
    from registry.store.document import read_registry

    entry = read_registry(find(registry)).get(entry_id)
    res = Result({"entry": entry})
    if is_smoke(entry):
        res.line("WARNING: smoke placeholder (random weights; scores mean nothing)")
    for k, v in sorted(entry.items()):
        res.line(f"{k}: {json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v}")
    out.render(res)


@command
def pin_cmd(
    entry_id: OptionalEntryIdArg = None,
    all_: AllOpt = False,
    check: Annotated[bool, typer.Option("--check", help="change nothing; exit 1 if anything would change")] = False,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute sha256, sizes and opset of entries from their files."""
    from registry.store.repin import pin

    changes = pin(find(registry), None if all_ else need_id(entry_id), check=check)
    res = Result({"changes": changes, "check": check}, ok=not (check and changes))
    for eid, fields in sorted(changes.items()):
        res.line(f"{eid}: {'would change' if check else 'updated'} {', '.join(fields)}")
    if not changes:
        res.line("all pins up to date")
    out.render(res)


@command
def check_ops_cmd(
    target: Annotated[str | None, typer.Argument(help="MODEL.onnx or an entry id")] = None,
    allowlist: AllowlistOpt = None,
    profile: Annotated[Profile | None, typer.Option(help="default: from the file name")] = None,
    emit_ort_config: Annotated[
        Profile | None, typer.Option("--emit-ort-config", metavar="PROFILE", help="print the ORT reduced-operator config")
    ] = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a graph against the op allowlist."""
    from registry.onnx.allowlist import load_allowlist, ort_reduced_config
    from registry.runtime.ops import check_target

    allow = load_allowlist(allowlist)
    if emit_ort_config:
        from registry.errors import RegistryNotFound
        from registry.runtime.ops import registry_runtime_ops

        profile_name = emit_ort_config.value
        allow.ops(profile_name)  # an unknown profile is a usage error before any model is read
        try:
            reg_path = find(registry)
        except RegistryNotFound:
            if registry is not None:
                raise
            out.warn("no registry found: the config lacks the ops onnxruntime's optimiser adds to its graphs (pass --registry)")
            config = ort_reduced_config(allow, profile_name)
        else:
            runtime_ops, models = registry_runtime_ops(reg_path, profile_name)
            config = ort_reduced_config(allow, profile_name, runtime_ops, models)
        out.render(Result({"profile": profile_name, "ort_config": config}).raw(config))
        return
    results = check_target(need_id(target), allow, profile.value if profile else None, registry)
    rows = []
    res = Result()
    for r in results:
        errs = [v for v in r.violations if v.severity == "error"]
        res.ok = res.ok and not errs
        rows.append({"model": r.model, "profile": r.profile, "ok": not errs,
                    "ops": sorted(f"{d}:{o}" for d, o in r.ops),
                    "violations": [v.as_json() for v in r.violations]})
        for v in r.violations:
            res.line(f"{r.model}: {v.severity}: {v}")
        if not errs:
            res.line(f"{r.model}: ok ({len(r.ops)} op types, profile {r.profile})")
    res.data = {"results": rows}
    out.render(res)


@command
def recover_cmd(
    discard: Annotated[bool, typer.Option("--discard", help="remove an update journal instead of completing it")] = False,
    registry: RegistryOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deal with a .tinyreg-update/ journal: complete it if this machine's interrupted writer left it, else --discard it.

    Readers (load, verify, pin --check, score, ...) never apply a journal; this writer does, and only
    one bound to the registry.json it replaces and to a record kept outside the folder. With --trust,
    what the journal lands is verified under that policy first.
    """
    from registry.store.commit import recover_folder

    found = recover_folder(find(registry), discard=discard, trust=trust)
    text = "nothing to recover" if found is None else found.describe()
    out.render(Result({"recovered": None if found is None else {"committed": found.committed, "files": list(found.files),
                                                                "reason": found.reason}}).line(text))


@command
def verify_cmd(
    registry: RegistryOpt = None,
    allowlist: AllowlistOpt = None,
    trust: TrustOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The pre-merge gate: pins, schema, paths, graphs, allowlist, sidecars, cards, signatures (under --trust)."""
    from registry.errors import Error
    from registry.verify import SELF_VOUCHING, unreadable_report, verify_registry

    try:
        report = verify_registry(find(registry), allowlist=allowlist, trust=trust)
    except Error as exc:
        if out.is_json():  # --json always prints a document, also when the registry itself cannot be read
            from registry.cli._errors import hint_text

            out.die(exc.diagnostics(), exc.exit_code, hint_text(exc), extra=unreadable_report(str(registry or "registry.json"), exc))
        raise
    doc = report.as_json()
    res = Result(doc, ok=bool(doc.pop("ok", report.ok)), notes=[] if report.trust else [f"note: {SELF_VOUCHING}"])
    res.text += verify_text(report)
    out.render(res)


def verify_text(report: Any) -> list[out.Block]:
    """The verify report for people: findings that say the same thing grouped, each group's members listed in full."""
    from registry.cli._text import group_findings

    blocks: list[out.Block] = []
    if report.findings:
        groups = group_findings(sorted(report.findings, key=lambda f: (f.check, f.entry, f.message)))
        groups.sort(key=lambda g: (g.severity != "error", g.check, g.who if len(g.entries) == 1 else ""))
        blocks.append(out.Table(f"tinyreg verify: {report.registry}", ["severity", "entry", "check", "finding"],
                                [[g.severity, g.who, g.check, g.message] for g in groups], frozenset({3})))
        blocks += [out.Line(f"{g.check}, {g.who}: {g.listing}") for g in groups if len(g.entries) > 1]
    n_err = len(report.errors)
    n_warn = len(report.findings) - n_err
    verdict = "OK" if report.ok else "FAILED"
    blocks.append(out.Line(f"{verdict}: {report.entries} entries, {report.checked_files} files checked, "
                           f"{n_err} errors, {n_warn} warnings (schema_version {report.schema_version})"))
    return blocks
