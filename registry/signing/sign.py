"""Sign registry entries and the registry snapshot; record the registry's own signing policy.

Each entry's bundle is a standard Sigstore bundle (v0.3 JSON) over a DSSE envelope whose
in-toto Statement holds the entry's whole row and names every file its consumers read with
its sha256 (``signing/statement.py``). ``sign`` also writes the whole-folder snapshot
(``signing/snapshot.py``). How a bundle is made is the :class:`~registry.signing.methods.Signer`'s
business (a key, or Sigstore keyless); nothing here branches on the method.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from registry._internal.safeio import read_raw
from registry.errors import InputError, UsageError
from registry.signing.methods import Signer, embedded_trusted_root, signer_from_options
from registry.signing.policy import key_fingerprint
from registry.signing.snapshot import DEFAULT_EXPIRES_DAYS, next_snapshot, sign_snapshot
from registry.signing.statement import build_statement
from registry.signing.verify import bundle_rel, signed_files, verify_entry_bundle
from registry.store.document import Entry, Registry, transaction
from registry.store.layout import SNAPSHOT_NAME, TRUST_DIR
from registry.store.pins import changed_fields, compute_pins


def sign_entries(
    registry_path: Path,
    entry_id: str | None,
    *,
    signer: Signer | None = None,
    key: Path | None = None,
    key_password: bytes | None = None,
    identity_token: str | None = None,
    staging: bool = False,
    trust_config: Path | None = None,
    expires_in_days: int = DEFAULT_EXPIRES_DAYS,
    now: datetime | None = None,
) -> list[str]:
    """Sign one entry (or all with ``entry_id=None``) and the whole-folder snapshot; returns the paths written.

    Each entry gets ``<onnx>.sigstore.json`` over its whole row and every file it uses; the
    folder gets ``registry.sigstore.json`` (OpenSSF Model Signing v1.0) over every file,
    the new ``registry.json`` with its incremented ``snapshot.version`` included.

    ``signer``: how to sign (``registry.signing.methods``); without one, it is built from
    ``key``/``key_password`` or ``identity_token``/``staging``/``trust_config``.
    """
    from registry.store.card import write_card
    from registry.store.entries import set_file_pin

    if signer is not None and (key is not None or key_password is not None or identity_token or staging
                               or trust_config is not None):
        raise UsageError("give a signer or the options to build one (key, identity token, staging, trust config), not both")
    if signer is None:
        signer = signer_from_options(key=key, key_password=key_password, identity_token=identity_token, staging=staging,
                                     trust_config=trust_config)
    written = []
    with transaction(registry_path) as reg:
        if reg.is_legacy:
            raise UsageError("signing needs a schema_version 2 registry (every file pinned)")
        snapshot = next_snapshot(reg.doc, expires_in_days, now)  # a malformed snapshot is bad input before anything runs
        ids = [entry_id] if entry_id else reg.ids()
        entries = [reg.get(i) for i in ids]
        for e in entries:
            stale = _stale_fields(reg, e)
            if stale:
                raise UsageError(f"pins of '{e['id']}' are out of date ({', '.join(stale)}); run 'tinyreg pin {e['id']}' first")
        check = signer.prepare(reg)
        for e in entries:
            rel = bundle_rel(e)
            bundle = signer.sign_entry(build_statement(reg, e))
            if check is not None:
                verify_entry_bundle(reg, e, bundle, rel, policy=check)  # a bundle that would not verify is never written
            reg.stage(rel, bundle)
            e["sigstore_bundle"] = rel
            set_file_pin(e, rel, "signature", bundle)
            write_card(reg, e)
            written.append(rel)
        reg.doc["snapshot"] = snapshot
        sign_folder = signer.sign_folder

        def stage_snapshot(r: Registry, final_registry: bytes) -> None:
            r.stage(SNAPSHOT_NAME, sign_snapshot(r.root, final_registry, r.staged, sign_folder))

        reg.before_commit.append(stage_snapshot)
        written.append(SNAPSHOT_NAME)
    return written


def _stale_fields(reg: Registry, e: Entry) -> list[str]:
    """Pinned fields that no longer match the files (the old bundle itself does not count)."""
    fresh = compute_pins(reg, e)
    stale = [k for k in changed_fields(e, fresh) if k != "files"]
    if [f for f in fresh.get("files", []) if f.get("role") != "signature"] != signed_files(e):
        stale.append("files")
    return stale


def set_policy(
    registry_path: Path,
    *,
    public_key: Path | None = None,
    identity: str | None = None,
    issuer: str | None = None,
    trusted_root: Path | None = None,
    staging: bool = False,
) -> dict[str, Any]:
    """Record the signing policy; copies the public key or trusted root into ``trust/`` (committed)."""
    with transaction(registry_path) as reg:
        if reg.is_legacy:
            raise UsageError("a signing policy needs a schema_version 2 registry")
        if public_key is not None:
            if identity or issuer:
                raise UsageError("give a public key or a keyless identity and issuer, not both", hint="trust")
            if trusted_root is not None or staging:
                raise UsageError("a trusted root and the staging instance apply to a keyless policy, not to a public key")
            try:
                pem = read_raw(public_key, "key")
            except OSError as exc:
                raise InputError(f"{public_key}: cannot read") from exc
            key_fingerprint(pem, str(public_key))
            rel = f"{TRUST_DIR}/signing-key.pub.pem"
            reg.stage(rel, pem)
            policy: dict[str, Any] = {"mode": "key", "public_key": rel}
        else:
            if not identity or not issuer:
                raise UsageError("a keyless policy needs both an identity and an issuer (exact values)", hint="trust")
            rel = f"{TRUST_DIR}/trusted_root.json"
            src = trusted_root or embedded_trusted_root(staging)
            from registry.signing._methods.sigstore_keyless import load_trusted_root

            load_trusted_root(Path(src))
            reg.stage(rel, read_raw(Path(src), "bundle"))
            policy = {"mode": "keyless", "identity": identity, "issuer": issuer, "trusted_root": rel}
        reg.doc["signing"] = policy
        return policy


def sign(
    entry_id: str | None = None,
    *,
    registry: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
    key_password: bytes | None = None,
    identity_token: str | None = None,
    staging: bool = False,
    trust_config: str | os.PathLike[str] | None = None,
    expires_in_days: int | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Sign entry ``entry_id`` (None: every entry) and the whole-folder snapshot; returns the paths written.

    ``registry``: a ``registry.json`` or its folder (None: found as every command finds it).
    ``key``: an ECDSA P-256 private key (PEM); without one, keyless Sigstore signing with
    ``identity_token`` or the ambient CI credentials. ``expires_in_days``: the snapshot's expiry
    (None: the default, 365 days). Each entry gets ``<onnx>.sigstore.json`` over its whole row and
    every file it uses; ``registry.sigstore.json`` signs every file of the folder.
    """
    from registry.store.document import find_registry

    return sign_entries(
        find_registry(registry), entry_id, key=None if key is None else Path(key), key_password=key_password,
        identity_token=identity_token, staging=staging, trust_config=None if trust_config is None else Path(trust_config),
        expires_in_days=DEFAULT_EXPIRES_DAYS if expires_in_days is None else expires_in_days, now=now,
    )
