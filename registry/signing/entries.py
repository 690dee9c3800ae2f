"""Sign registry entries and the registry snapshot; verify bundles fully offline.

Each entry's bundle is a standard Sigstore bundle (v0.3 JSON) over a DSSE
envelope whose in-toto Statement holds the entry's whole row and names every
file its consumers read with its sha256 (``signing/statement.py``). ``sign``
also writes the whole-folder snapshot (``signing/snapshot.py``). Verification
uses a trust policy: the consumer's (``signing/policy.py``), or, when none is
given, the registry's own ``signing`` block (the registry vouches for itself).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from registry._internal.paths import confine
from registry._internal.safeio import read_raw
from registry.errors import Error, InputError, SignatureError, UsageError
from registry.signing._methods import INTOTO_PAYLOAD_TYPE
from registry.signing.policy import KeyAnchor, TrustPolicy, key_fingerprint, policy_from_registry
from registry.signing.snapshot import DEFAULT_EXPIRES_DAYS, next_snapshot, sign_snapshot
from registry.signing.statement import build_statement, check_statement
from registry.store import layout
from registry.store.document import Entry, Registry, transaction
from registry.store.layout import SNAPSHOT_NAME, TRUST_DIR
from registry.store.pins import changed_fields, compute_pins


def bundle_rel(entry: Entry) -> str:
    return layout.bundle_rel(str(entry["onnx"]))


def signed_files(entry: Entry) -> list[dict[str, Any]]:
    return sorted((f for f in entry.get("files") or [] if f.get("role") != "signature"), key=lambda f: str(f["path"]))


def verify_entry_signature(
    reg: Registry, entry: Entry, *, policy: TrustPolicy | None = None, digests: Mapping[str, str] | None = None
) -> None:
    """Raise SignatureError unless the entry's bundle verifies under ``policy`` and signs its row and files as they are.

    ``policy`` None: the registry's own signing block (the registry vouches for itself).
    ``digests`` (path -> sha256 of bytes the caller already read and hashed) must agree with what was signed.
    """
    rel = entry.get("sigstore_bundle")
    if not isinstance(rel, str):
        raise SignatureError(f"entry '{entry['id']}' is not signed")
    try:
        path = confine(reg.root, rel, what="sigstore_bundle")
    except Error as exc:
        raise SignatureError(exc.diagnostics()) from exc
    try:
        bundle_json = read_raw(path, "bundle")
    except FileNotFoundError as exc:
        raise SignatureError(f"bundle {rel} is missing") from exc
    except OSError as exc:
        raise SignatureError(f"bundle {rel}: cannot read ({exc.strerror})") from exc
    verify_entry_bundle(reg, entry, bundle_json, rel, policy=policy, digests=digests)


def _strict_json(data: bytes, source: str) -> Any:
    from registry._internal.jsonio import loads_json

    try:
        return loads_json(data, source)
    except InputError as exc:
        raise SignatureError(exc.diagnostics()) from exc


def verify_entry_bundle(
    reg: Registry, entry: Entry, bundle_json: bytes, rel: str, *, policy: TrustPolicy | None = None,
    digests: Mapping[str, str] | None = None,
) -> None:
    """Verify bundle bytes for ``entry`` against ``policy`` (default: the registry's block) and the files on disk."""
    _strict_json(bundle_json, f"bundle {rel}")  # no duplicate keys, no deep nesting, before any parser sees it
    pol = policy if policy is not None else policy_from_registry(reg)
    ptype, payload = pol.verify_dsse(bundle_json, f"bundle {rel}")
    if ptype != INTOTO_PAYLOAD_TYPE:
        raise SignatureError(f"bundle payload type {ptype!r} is not an in-toto statement")
    check_statement(reg, entry, payload, rel, digests)


def enforce_trust(
    reg: Registry, entry: Entry, policy: TrustPolicy, *, registry_bytes: bytes, digests: Mapping[str, str],
    now: datetime | None = None,
) -> None:
    """Fail closed (SignatureError) unless the snapshot and the entry verify under the consumer's ``policy``.

    ``registry_bytes`` are the bytes of registry.json that were parsed; ``digests`` the sha256 of
    every other file already read, so what is checked is what is used. The snapshot is checked
    for those files only (``verify --trust`` checks every file of the folder).
    """
    from registry._internal.hashing import sha256_bytes
    from registry.signing.snapshot import check_registry_snapshot, snapshot_field

    snapshot_field(reg.doc, str(reg.path))  # a malformed snapshot (no version) is bad input, before anything else
    if reg.is_legacy:
        raise SignatureError(f"a schema_version {reg.schema_version} registry cannot be signed; the trust policy refuses it")
    from registry.signing.policy import policy_inside

    inside = policy_inside(policy, reg.root)
    if inside:
        raise SignatureError(inside)
    used = {**digests, layout.REGISTRY_NAME: sha256_bytes(registry_bytes).sha256}
    # the snapshot must sign registry.json and every file loaded, as read; other entries' files are not hashed
    from registry.distribution.state import check_pulled_entries, is_pulled_folder

    if is_pulled_folder(reg.root):  # a registry assembled by pull: entry by entry (docs/distribution.md)
        check_pulled_entries(reg, [entry], now=now)
    else:
        check_registry_snapshot(reg.root, policy, doc=reg.doc, now=now, only=used)
    verify_entry_signature(reg, entry, policy=policy, digests=digests)


def sign_entries(
    registry_path: Path,
    entry_id: str | None,
    *,
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
    """
    from registry.signing._methods import model_signing_v1 as oms
    from registry.store.card import write_card
    from registry.store.entries import set_file_pin

    written = []
    with transaction(registry_path) as reg:
        if reg.is_legacy:
            raise UsageError("signing needs a schema_version 2 registry (every file pinned)")
        declared = reg.doc.get("signing")
        mode = declared.get("mode") if isinstance(declared, dict) else None
        snapshot = next_snapshot(reg.doc, expires_in_days, now)  # a malformed snapshot is bad input before anything runs
        ids = [entry_id] if entry_id else reg.ids()
        entries = [reg.get(i) for i in ids]
        for e in entries:
            stale = _stale_fields(reg, e)
            if stale:
                raise UsageError(f"pins of '{e['id']}' are out of date ({', '.join(stale)}); run 'tinyreg pin {e['id']}' first")
        check: TrustPolicy | None
        if key is not None and (identity_token or staging or trust_config is not None):
            raise UsageError("an identity token, the staging instance and a trust config apply to keyless signing, "
                             "not to signing with a private key")
        if key is not None:
            from registry.signing._methods import sign_ec_key

            if mode not in (None, "key"):
                raise UsageError("the registry's policy is keyless; a signature made with a private key would not verify",
                                 hint="keyless")
            priv = sign_ec_key.load_private_key(key, key_password)
            pub = sign_ec_key.public_pem_of(priv)
            check = TrustPolicy(keys=(KeyAnchor(pub, key_fingerprint(pub, str(key))),), source="the signing key")
            if mode == "key" and policy_from_registry(reg).keys[0].sha256 != check.keys[0].sha256:
                raise UsageError("the private key does not match the public key the registry pins", hint="key")

            def sign_entry(statement: bytes) -> bytes:
                return sign_ec_key.sign(statement, priv)

            def sign_folder(statement: bytes) -> bytes:
                return oms.sign_key(statement, priv)
        else:
            if mode == "key":
                raise UsageError("the registry's policy pins a public key: sign with its private key", hint="key")
            from registry.signing._methods import sign_sigstore

            check = policy_from_registry(reg) if mode == "keyless" else None
            token = sign_sigstore.identity_token(identity_token)
            config = sign_sigstore.trust_config(staging, trust_config)

            def sign_entry(statement: bytes) -> bytes:
                return sign_sigstore.sign(statement, token, config)

            sign_folder = sign_entry

        for e in entries:
            rel = bundle_rel(e)
            bundle = sign_entry(build_statement(reg, e))
            if check is not None:
                verify_entry_bundle(reg, e, bundle, rel, policy=check)  # a bundle that would not verify is never written
            reg.stage(rel, bundle)
            e["sigstore_bundle"] = rel
            set_file_pin(e, rel, "signature", bundle)
            write_card(reg, e)
            written.append(rel)
        reg.doc["snapshot"] = snapshot

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
            src = trusted_root or _embedded_root(staging)
            from registry.signing._methods.verify_sigstore import load_trusted_root

            load_trusted_root(Path(src))
            reg.stage(rel, read_raw(Path(src), "bundle"))
            policy = {"mode": "keyless", "identity": identity, "issuer": issuer, "trusted_root": rel}
        reg.doc["signing"] = policy
        return policy


def _embedded_root(staging: bool) -> Path:
    """The trusted root sigstore-python ships for the public-good (or staging) instance."""
    try:
        import sigstore
    except ImportError as exc:
        from registry.errors import MissingDependency

        raise MissingDependency("keyless signing policy", "sign") from exc
    host = "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev" if staging else "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    path = Path(sigstore.__file__).parent / "_store" / host / "trusted_root.json"
    if not path.is_file():
        raise InputError(f"sigstore-python ships no trusted root at {path}; give a trusted root file", hint="trusted_root")
    return path


def verify_bundle(
    bundle: Path,
    *,
    artifact: Path | None,
    identity: str | None = None,
    issuer: str | None = None,
    key: Path | None = None,
    trusted_root: Path | None = None,
    staging: bool = False,
) -> dict[str, Any]:
    """``tinyreg verify-bundle``: verify any Sigstore bundle offline, by a public key or an exact identity.

    ``artifact`` may be a file (a subject of the DSSE statement, or the signed blob) or a folder
    (an OpenSSF Model Signing v1.0 signature, e.g. one written by ``model_signing sign key``).
    """
    from registry.signing._methods import verify_sigstore

    try:
        bundle_json = read_raw(bundle, "bundle")
    except OSError as exc:
        raise InputError(f"{bundle}: cannot read ({exc.strerror})") from exc
    _strict_json(bundle_json, f"bundle {bundle}")  # no duplicate keys, no deep nesting, before any parser sees it
    result: dict[str, Any] = {"bundle": str(bundle), "ok": True}
    if key is not None:
        if identity or issuer:
            raise UsageError("give a public key or a keyless identity and issuer, not both", hint="trust")
        if trusted_root is not None or staging:
            raise UsageError("a trusted root and the staging instance apply to keyless bundles, not to a public key")
        try:
            pem = read_raw(key, "key")
        except OSError as exc:
            raise InputError(f"{key}: cannot read ({exc.strerror})") from exc
        policy = TrustPolicy(keys=(KeyAnchor(pem, key_fingerprint(pem, str(key))),), source=str(key))
        result["key_sha256"] = policy.keys[0].sha256
        root: Path | None = None
    else:
        if not identity or not issuer:
            raise UsageError("verifying a bundle needs a public key or a keyless identity and issuer", hint="trust")
        if trusted_root is not None and staging:
            raise UsageError("give a trusted root file or the staging instance, not both", hint="trusted_root_or_staging")
        root = trusted_root or _embedded_root(staging)
        from registry.signing.policy import IdentityAnchor, _canonical_root

        try:
            root_bytes = read_raw(root, "bundle")
        except OSError as exc:
            raise InputError(f"{root}: cannot read the trusted root") from exc
        verify_sigstore.load_trusted_root(root_bytes, str(root))
        policy = TrustPolicy(identities=(IdentityAnchor(identity, issuer, _canonical_root(root_bytes, str(root))),), source=identity)
        result.update(identity=identity, issuer=issuer, trusted_root=str(root))
    if artifact is not None and artifact.is_dir():
        result.update(_verify_folder(bundle, bundle_json, artifact, policy))
        return result
    if key is None and not verify_sigstore.is_dsse(bundle_json):
        data = _read_artifact(artifact)
        assert root is not None and identity and issuer
        verify_sigstore.verify(bundle_json, identity=identity, issuer=issuer, trusted_root=root, artifact=data)
        return result
    ptype, payload = policy.verify_dsse(bundle_json, str(bundle))
    if artifact is not None and _is_oms_statement(payload):
        result.update(_verify_single_file(payload, artifact))
    elif artifact is not None:
        verify_sigstore._check_subject(payload, _read_artifact(artifact))
    result["payload_type"] = ptype
    with contextlib.suppress(SignatureError, KeyError, TypeError, AttributeError):
        result["subjects"] = [s["name"] for s in _strict_json(payload, "signed statement").get("subject", [])]
    return result


def _read_artifact(artifact: Path | None) -> bytes:
    if artifact is None:
        raise SignatureError("this bundle signs an artifact: give the artifact file to verify")
    try:
        return read_raw(artifact, "model")
    except OSError as exc:
        raise InputError(f"{artifact}: cannot read ({exc.strerror})") from exc


def _is_oms_statement(payload: bytes) -> bool:
    from registry.signing._methods import model_signing_v1 as oms

    with contextlib.suppress(Error, ValueError):
        doc = _strict_json(payload, "signed statement")
        return isinstance(doc, dict) and doc.get("predicateType") == oms.PREDICATE_TYPE
    return False


def _verify_single_file(payload: bytes, artifact: Path) -> dict[str, Any]:
    """An OpenSSF Model Signing v1.0 signature of one file: a single resource ``"."`` whose digest is the file's sha256
    (the subject digest is the sha256 of that digest, as for a folder of one file); the subject name is the file name
    the signer saw, reported but not required to match (``model_signing verify`` does not compare it)."""
    from registry._internal.hashing import sha256_file
    from registry.signing._methods import model_signing_v1 as oms

    name, manifest, _ignores = oms.manifest_from_statement(payload)
    if [n for n, _ in manifest] != ["."]:
        raise SignatureError(f"the statement signs a folder ({len(manifest)} resources), not the single file {artifact.name}; "
                             "give the folder")
    got = sha256_file(artifact).sha256
    if manifest[0][1] != got:
        raise SignatureError(f"{artifact.name}: sha256 {got[:16]}... is not the signed digest {manifest[0][1][:16]}...")
    return {"format": "openssf-model-signing-v1.0", "subjects": [name], "files": 1}


def _verify_folder(bundle: Path, bundle_json: bytes, folder: Path, policy: TrustPolicy) -> dict[str, Any]:
    """Verify ``folder`` like ``model_signing verify``: the signed ignore_paths and the signature itself are skipped."""
    import os

    from registry.signing._methods import model_signing_v1 as oms

    ptype, payload = policy.verify_dsse(bundle_json, str(bundle))
    if ptype != INTOTO_PAYLOAD_TYPE:
        raise SignatureError(f"{bundle}: payload type {ptype!r} is not an in-toto statement")
    _name, expected, ignores = oms.manifest_from_statement(payload)
    extra = list(ignores)
    rel = os.path.relpath(os.path.realpath(bundle), os.path.realpath(folder))
    if not rel.startswith(".."):
        extra.append(rel.replace(os.sep, "/"))
    try:
        actual = oms.manifest_of_folder(folder, extra)
    except oms.UnsignableFolder as exc:
        raise SignatureError(exc.diagnostics()) from exc
    oms.compare(expected, actual)
    return {"payload_type": ptype, "files": len(expected), "ignore_paths": sorted(ignores)}
