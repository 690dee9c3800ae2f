"""OCI distribution commands: push, pull (docs/distribution.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from registry.cli import _output as out
from registry.cli._errors import command
from registry.cli._options import EntryIdArg, JsonOpt, RegistryOpt, TrustOpt
from registry.cli._output import Result

RefArg = Annotated[str, typer.Argument(metavar="REF", help="oci://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]", show_default=False)]
PlainHttpOpt = Annotated[bool, typer.Option("--plain-http", help="plain http instead of https (loopback hosts only)")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=1.0, max=3600.0,
                                           help="seconds to wait for the registry (also sets each transfer's deadline)")]


@command
def push_cmd(
    entry_id: EntryIdArg,
    ref: RefArg,
    unsigned: Annotated[bool, typer.Option("--unsigned", help="allow pushing an entry that carries no signature")] = False,
    trust: TrustOpt = None,
    plain_http: PlainHttpOpt = False,
    timeout: TimeoutOpt = 30.0,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish a verified entry: a ModelPack manifest (one layer per file) with its signature as a referrer.

    The signature must verify under --trust (default: the registry's own signing policy).
    """
    from registry.cli._options import find
    from registry.distribution import push

    res = push(entry_id, ref, registry=find(registry), unsigned=unsigned, trust=trust, plain_http=plain_http, timeout=timeout)
    shown = Result(res.as_json()).line(res.ref)
    if not res.signed:
        shown.warnings.append(f"'{entry_id}' was pushed UNSIGNED: consumers can only pull it with --unverified")
    out.render(shown)


@command
def pull_cmd(
    ref: RefArg,
    trust: TrustOpt = None,
    unverified: Annotated[bool, typer.Option("--unverified", help="take the entry WITHOUT checking who signed it")] = False,
    entry: Annotated[str | None, typer.Option("--id", help="the entry id expected (refuse a tag moved to another entry)")] = None,
    plain_http: PlainHttpOpt = False,
    timeout: TimeoutOpt = 30.0,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir",
                                                   help="blob cache (default $TINYREG_CACHE_DIR or ~/.cache/tinyreg)")] = None,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify an entry's signature under --trust before fetching any blob, then add it to --registry in one update.

    --registry names the destination registry folder (created when missing).
    """
    from registry.distribution import pull

    if unverified:
        out.warn("UNVERIFIED PULL: nobody checked who signed this entry; it will not pass 'verify --trust'")
    res = pull(ref, registry=registry, trust=trust, unverified=unverified, entry=entry, plain_http=plain_http, timeout=timeout,
               cache_dir=cache_dir)
    state = "verified" if res.verified else "UNVERIFIED"
    what = "added" if res.changed else "already present"
    out.render(Result(res.as_json()).line(f"{res.entry}: {what} in {res.registry} ({state}; {res.files} files, {res.bytes} bytes, "
                                          f"{res.from_cache} from cache) {res.ref}"))
