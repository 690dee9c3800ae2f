"""``tinyreg migrate``: a VMAFx schema_version 0/1 registry becomes schema_version 2, in place."""

from __future__ import annotations

from typing import Annotated

import typer

from registry.cli import _output as out
from registry.cli._errors import command
from registry.cli._options import JsonOpt, RegistryOpt, find
from registry.cli._output import Result


@command
def migrate_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print what would change; write nothing")] = False,
    skip_missing: Annotated[bool, typer.Option("--skip-missing", help="leave out (and report) entries whose files are missing")] = False,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Migrate to schema_version 2 as one atomic update: files[] with every loaded file, io from the graph, cards."""
    from registry.migrate import MigrationRefused, migrate_registry

    try:
        m = migrate_registry(find(registry), dry_run=dry_run, skip_missing=skip_missing)
    except MigrationRefused as exc:
        out.die(f"{exc.diagnostics()} (--skip-missing leaves out entries with missing files)" if "missing" in str(exc)
                else exc.diagnostics(), exc.exit_code)
        return
    res = Result(m.as_json(), ok=not m.refused)
    if m.noop:
        res.line(f"{m.registry}: already schema_version 2; nothing to do")
    elif m.from_version == 2:
        verb = "would be" if m.dry_run else "was"
        res.line(f"{m.registry}: already schema_version 2; registry.schema.json (the VMAFx gate's) {verb} {m.schema_file}")
    else:
        verb = "would migrate" if m.dry_run else "migrated"
        res.line(f"{m.registry}: {verb} schema_version {m.from_version} -> 2 ({len(m.entries)} entries)")
        for e in sorted(m.entries, key=lambda e: e.id):
            extra = ""
            if e.opset is not None:
                extra += f"; opset {e.opset[0]} -> {e.opset[1]} (the graph imports {e.opset[1]})"
            for fix in e.sidecar_fixes:
                extra += f"; sidecar {fix}"
            res.line(f"  {e.id}: + {', '.join(sorted(e.added))}; pins {', '.join(e.files)}; card {e.card}{extra}")
        for eid in m.left_out:
            res.line(f"  left out {eid}: missing {', '.join(sorted(m.missing.get(eid, [])))} (row kept in 'migration')")
        for rel in m.unlisted:
            res.line(f"  loaded by no entry, pinned in 'migration': {rel}")
        if m.schema_file:
            res.line(f"  registry.schema.json (the VMAFx gate validates against it): {m.schema_file}")
        if m.refused:
            for eid, problems in sorted(m.broken.items()):
                res.line(f"  cannot migrate {eid}: {'; '.join(problems)}")
            if not m.left_out:
                for eid, files in sorted(m.missing.items()):
                    res.line(f"  cannot migrate {eid}: missing {', '.join(sorted(files))}")
    out.render(res)
