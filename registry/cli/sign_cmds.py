"""Signing commands: trust, sign, verify-bundle."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from registry.cli import _output as out
from registry.cli._errors import command
from registry.cli._options import (
    AllOpt,
    IdentityOpt,
    IssuerOpt,
    JsonOpt,
    KeyOpt,
    OptionalEntryIdArg,
    RegistryOpt,
    StagingOpt,
    TrustedRootOpt,
    find,
    need_id,
    one_key,
)
from registry.cli._output import Result


@command
def trust_cmd(
    key: KeyOpt = None,
    identity: IdentityOpt = None,
    issuer: IssuerOpt = None,
    trusted_root: TrustedRootOpt = None,
    staging: StagingOpt = False,
    out_file: Annotated[Path | None, typer.Option("--out", help="write the consumer trust policy FILE (outside the registry)")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="with --out: start a new policy instead of adding to FILE")] = False,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a trust policy (--out FILE, for consumers: verify --trust / TINYREG_TRUST), or record the registry's own one."""
    if out_file is not None:
        from registry.signing.policy import write_policy

        pol = write_policy(out_file, keys=key, identity=identity, issuer=issuer, trusted_root=trusted_root, staging=staging,
                           replace=replace)
        out.render(Result({"trust_policy": str(out_file), "trusts": pol.describe()}).line(
            f"trust policy {out_file}: trusts {pol.describe()}"))
        return
    from registry.errors import UsageError
    from registry.signing.sign import set_policy

    if replace:
        raise UsageError("--replace applies to a consumer trust policy (--out FILE), not to the registry's own signing block")

    if key and len(key) > 1:
        raise UsageError("the registry's own signing block pins one key; several keys need --out FILE")
    policy = set_policy(find(registry), public_key=key[0] if key else None, identity=identity, issuer=issuer,
                        trusted_root=trusted_root, staging=staging)
    out.render(Result({"policy": policy}).line(f"signing policy: {json.dumps(policy, sort_keys=True)}"))


@command
def sign_cmd(
    entry_id: OptionalEntryIdArg = None,
    all_: AllOpt = False,
    key: KeyOpt = None,
    identity_token: Annotated[str | None, typer.Option(help="OIDC token (default: ambient CI credentials)")] = None,
    staging: StagingOpt = False,
    trust_config: Annotated[Path | None, typer.Option(help="Sigstore client trust config JSON (custom instance)")] = None,
    expires_in: Annotated[int, typer.Option("--expires-in", metavar="DAYS", help="snapshot expiry in days")] = 365,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign entries (their whole row and every file they use) and the registry snapshot (key or keyless)."""
    from registry.signing.methods import signer_from_options
    from registry.signing.sign import sign_entries

    pw = os.environ.get("TINYREG_KEY_PASSWORD")
    signer = signer_from_options(key=one_key(key), key_password=pw.encode() if pw else None, identity_token=identity_token,
                                 staging=staging, trust_config=trust_config)
    written = sign_entries(find(registry), None if all_ else need_id(entry_id), signer=signer, expires_in_days=expires_in)
    res = Result({"signed": list(written)})
    for rel in written:
        res.line(f"signed -> {rel}")
    out.render(res)


@command
def verify_bundle_cmd(
    artifact: Annotated[Path | None, typer.Argument(help="signed file or folder (optional for DSSE bundles)")] = None,
    bundle: Annotated[Path, typer.Option("--bundle", help="Sigstore bundle JSON")] = Path(),
    key: KeyOpt = None,
    identity: IdentityOpt = None,
    issuer: IssuerOpt = None,
    trusted_root: TrustedRootOpt = None,
    staging: StagingOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify any Sigstore bundle fully offline: a file, or a folder signed in the OpenSSF Model Signing format."""
    from registry.errors import UsageError
    from registry.signing.verify import verify_bundle

    if bundle == Path():
        raise UsageError("verify-bundle needs --bundle and either --key or --identity and --issuer")
    # the verifier is built from the options once, after the bundle has been read (bad input is reported in that order)
    the_key = one_key(key)
    res = verify_bundle(bundle, artifact=artifact, identity=identity or None, issuer=issuer or None, key=the_key,
                        trusted_root=trusted_root, staging=staging)
    signer = f"key sha256:{str(res.get('key_sha256', ''))[:16]}" if the_key else f"{identity} ({issuer})"
    what = f"; {res['files']} files of {artifact}" if "files" in res else ""
    subj = f"; subjects: {', '.join(res['subjects'])}" if res.get("subjects") else ""
    out.render(Result({"bundle": str(bundle), **{k: v for k, v in res.items() if k not in ("ok", "command")}},
                      ok=bool(res.get("ok", True))).line(f"OK: {bundle} signed by {signer}{what}{subj}"))
