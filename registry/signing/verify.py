"""Verify entry signatures: the row and every file as signed, under a trust policy; verify any bundle offline.

Verification uses a trust policy: the consumer's (``signing/policy.py``), or, when none is
given, the registry's own ``signing`` block (the registry vouches for itself). Which method
made a bundle is the policy's :class:`~registry.signing.methods.Verifier`s' business.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry._internal.paths import confine
from registry._internal.safeio import read_raw
from registry.errors import Error, InputError, SignatureError, UsageError
from registry.signing._methods import INTOTO_PAYLOAD_TYPE
from registry.signing._methods.model_signing_v1 import FolderVerifier, is_oms_statement, verify_single_file
from registry.signing._methods.sigstore_keyless import check_subject
from registry.signing.methods import Verifier, verifier_from_options
from registry.signing.policy import TrustPolicy, policy_from_registry
from registry.signing.statement import check_statement
from registry.store import layout
from registry.store.document import Entry, Registry
from registry.store.types import FilePin


def bundle_rel(entry: Entry) -> str:
    return layout.bundle_rel(str(entry["onnx"]))


def signed_files(entry: Mapping[str, Any]) -> list[FilePin]:
    return sorted((f for f in entry.get("files") or [] if f.get("role") != "signature"), key=lambda f: str(f["path"]))


def verify_entry_signature(
    reg: Registry, entry: Entry, *, policy: TrustPolicy | None = None, digests: Mapping[str, str] | None = None
) -> None:
    """Raise SignatureError unless the entry's bundle verifies under ``policy`` and signs its row and files as they are.

    ``policy`` None: the registry's own signing block (the registry vouches for itself).
    ``digests`` (path -> sha256 of bytes the caller already read and hashed) must agree with what was signed.
    """
    rel, bundle_json = read_entry_bundle(reg, entry)
    verify_entry_bundle(reg, entry, bundle_json, rel, policy=policy, digests=digests)


def read_entry_bundle(reg: Registry, entry: Entry) -> tuple[str, bytes]:
    """(path, bytes) of the entry's bundle, read once (a caller that also hashes it verifies these very bytes)."""
    rel = entry.get("sigstore_bundle")
    if not isinstance(rel, str):
        raise SignatureError(f"entry '{entry['id']}' is not signed")
    try:
        path = confine(reg.root, rel, what="sigstore_bundle")
    except Error as exc:
        raise SignatureError(exc.diagnostics()) from exc
    try:
        return rel, read_raw(path, "bundle")
    except FileNotFoundError as exc:
        raise SignatureError(f"bundle {rel} is missing") from exc
    except OSError as exc:
        raise SignatureError(f"bundle {rel}: cannot read ({exc.strerror})") from exc


def strict_json(data: bytes, source: str) -> Any:
    from registry._internal.jsonio import loads_json

    try:
        return loads_json(data, source)
    except InputError as exc:
        raise SignatureError(exc.diagnostics()) from exc


def verify_entry_bundle(
    reg: Registry, entry: Entry, bundle_json: bytes, rel: str, *, policy: TrustPolicy | None = None,
    digests: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The signed subjects (path -> sha256) of bundle bytes for ``entry``, verified against ``policy`` (default: the
    registry's block) and the files on disk."""
    strict_json(bundle_json, f"bundle {rel}")  # no duplicate keys, no deep nesting, before any parser sees it
    pol = policy if policy is not None else policy_from_registry(reg)
    ptype, payload = pol.verify_dsse(bundle_json, f"bundle {rel}")
    if ptype != INTOTO_PAYLOAD_TYPE:
        raise SignatureError(f"bundle payload type {ptype!r} is not an in-toto statement")
    return check_statement(reg, entry, payload, rel, digests)


def verify_bundle(
    bundle: Path,
    *,
    artifact: Path | None,
    verifier: Verifier | None = None,
    identity: str | None = None,
    issuer: str | None = None,
    key: Path | None = None,
    trusted_root: Path | None = None,
    staging: bool = False,
) -> dict[str, Any]:
    """``tinyreg verify-bundle``: verify any Sigstore bundle offline, by a public key or an exact identity.

    ``artifact`` may be a file (a subject of the DSSE statement, or the signed blob) or a folder
    (an OpenSSF Model Signing v1.0 signature, e.g. one written by ``model_signing sign key``).
    ``verifier`` (``registry.signing.methods``): whom to trust; without one it is built from
    ``key`` or ``identity``/``issuer``/``trusted_root``/``staging``.
    """
    if verifier is not None and (key is not None or identity or issuer or trusted_root is not None or staging):
        raise UsageError("give a verifier or the options to build one (key, identity, issuer, trusted root), not both")
    try:
        bundle_json = read_raw(bundle, "bundle")
    except OSError as exc:
        raise InputError(f"{bundle}: cannot read ({exc.strerror})") from exc
    strict_json(bundle_json, f"bundle {bundle}")  # no duplicate keys, no deep nesting, before any parser sees it
    result: dict[str, Any] = {"bundle": str(bundle), "ok": True}
    if verifier is None:
        verifier = verifier_from_options(key=key, identity=identity, issuer=issuer, trusted_root=trusted_root, staging=staging)
    result.update(verifier.describe())
    policy = verifier.as_policy()
    if artifact is not None and artifact.is_dir():
        result.update(FolderVerifier(policy).verify(bundle, bundle_json, artifact))
        return result
    if not verifier.is_envelope(bundle_json):
        verifier.verify_artifact(bundle_json, _read_artifact(artifact))
        return result
    ptype, payload = policy.verify_dsse(bundle_json, str(bundle))
    if artifact is not None and is_oms_statement(payload):
        result.update(verify_single_file(payload, artifact))
    elif artifact is not None:
        check_subject(payload, _read_artifact(artifact))
    result["payload_type"] = ptype
    with contextlib.suppress(SignatureError, KeyError, TypeError, AttributeError):
        result["subjects"] = [s["name"] for s in strict_json(payload, "signed statement").get("subject", [])]
    return result


def _read_artifact(artifact: Path | None) -> bytes:
    if artifact is None:
        raise SignatureError("this bundle signs an artifact: give the artifact file to verify")
    try:
        return read_raw(artifact, "model")
    except OSError as exc:
        raise InputError(f"{artifact}: cannot read ({exc.strerror})") from exc
