"""Signing commands: trust, sign, verify-bundle."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from registry.cli import _output as out
from registry.cli._errors import command
from registry.cli._options import JsonOpt, RegistryOpt, find, need_id


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
    from registry.signing.entries import set_policy

    policy = set_policy(find(registry), public_key=key, identity=identity, issuer=issuer, trusted_root=trusted_root,
                        staging=staging)
    out.line(f"signing policy: {json.dumps(policy, sort_keys=True)}")


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
    from registry.signing.entries import sign_entries

    pw = os.environ.get("TINYREG_KEY_PASSWORD")
    written = sign_entries(find(registry), None if all_ else need_id(entry_id), key=key,
                           key_password=pw.encode() if pw else None, identity_token=identity_token, staging=staging,
                           trust_config=trust_config)
    for rel in written:
        out.line(f"signed -> {rel}")


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
    from registry.signing.entries import verify_bundle

    if bundle == Path() or not identity or not issuer:
        raise UsageError("verify-bundle needs --bundle, --identity and --issuer")
    res = verify_bundle(bundle, artifact=artifact, identity=identity, issuer=issuer, trusted_root=trusted_root, staging=staging)
    if as_json:
        out.print_json(res)
    else:
        subj = f"; subjects: {', '.join(res['subjects'])}" if res.get("subjects") else ""
        out.line(f"OK: {bundle} signed by {identity} ({issuer}){subj}")
