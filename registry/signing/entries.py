"""Sign registry entries and verify their bundles fully offline.

Each entry's bundle is a standard Sigstore bundle (v0.3 JSON) over a DSSE
envelope whose in-toto Statement names every pinned file of the entry (fp32
ONNX, int8 sibling, external data, sidecar, calibration set) with its sha256.
A changed, swapped or added file breaks verification. The registry's top-level
``signing`` object is the policy: the exact certificate identity and OIDC
issuer plus a committed trusted root (keyless), or a pinned public key (key).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry._internal.hashing import sha256_file
from registry._internal.paths import confine
from registry.errors import InputError, SignatureError, UsageError
from registry.signing._methods import INTOTO_PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, canonical
from registry.store import layout
from registry.store.document import Entry, Registry, transaction
from registry.store.layout import TRUST_DIR
from registry.store.pins import changed_fields, compute_pins


def bundle_rel(entry: Entry) -> str:
    return layout.bundle_rel(str(entry["onnx"]))


def signed_files(entry: Entry) -> list[dict[str, Any]]:
    return sorted((f for f in entry.get("files") or [] if f.get("role") != "signature"), key=lambda f: str(f["path"]))


def build_statement(entry: Entry) -> bytes:
    files = signed_files(entry)
    if not files:
        raise UsageError(f"entry '{entry['id']}' pins no files to sign (schema_version 2 entries only)")
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f["path"], "digest": {"sha256": f["sha256"]}} for f in files],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"entry": entry["id"], "files": [{"path": f["path"], "role": f["role"], "size": f["size"]} for f in files]},
    }
    return canonical(statement)


@dataclass(frozen=True)
class Policy:
    mode: str
    identity: str | None = None
    issuer: str | None = None
    trusted_root: Path | None = None
    public_key: Path | None = None


def policy_of(reg: Registry) -> Policy:
    doc = reg.doc.get("signing")
    if not isinstance(doc, dict):
        raise SignatureError("the registry records no signing policy ('tinyreg trust' sets one)")
    mode = doc.get("mode")
    if mode == "key":
        return Policy("key", public_key=confine(reg.root, str(doc.get("public_key", "")), what="signing.public_key"))
    if mode == "keyless":
        if not doc.get("identity") or not doc.get("issuer"):
            raise SignatureError("keyless signing policy needs an exact identity and issuer")
        return Policy("keyless", identity=str(doc["identity"]), issuer=str(doc["issuer"]),
                      trusted_root=confine(reg.root, str(doc.get("trusted_root", "")), what="signing.trusted_root"))
    raise SignatureError(f"unknown signing mode {mode!r}")


def _verify_payload(reg: Registry, bundle_json: bytes) -> tuple[str, bytes]:
    pol = policy_of(reg)
    if pol.mode == "key":
        from registry.signing._methods import verify_ec_key

        assert pol.public_key is not None
        try:
            pem = pol.public_key.read_bytes()
        except OSError as exc:
            raise SignatureError(f"pinned public key {pol.public_key.name} is unreadable") from exc
        return verify_ec_key.verify(bundle_json, pem)
    from registry.signing._methods import verify_sigstore

    assert pol.trusted_root and pol.identity and pol.issuer
    out = verify_sigstore.verify(bundle_json, identity=pol.identity, issuer=pol.issuer, trusted_root=pol.trusted_root)
    if out is None:
        raise SignatureError("entry bundles must hold a DSSE envelope over the entry's file statement")
    return out


def verify_entry_signature(reg: Registry, entry: Entry, *, digests: Mapping[str, str] | None = None) -> None:
    """Raise SignatureError unless the entry's bundle verifies and names exactly its files as they are.

    ``digests`` (path -> sha256 of bytes the caller already read and hashed) spares a second hash.
    """
    rel = entry.get("sigstore_bundle")
    if not isinstance(rel, str):
        raise SignatureError(f"entry '{entry['id']}' is not signed")
    path = confine(reg.root, rel, what="sigstore_bundle")
    try:
        bundle_json = path.read_bytes()
    except FileNotFoundError as exc:
        raise SignatureError(f"bundle {rel} is missing") from exc
    verify_entry_bundle(reg, entry, bundle_json, rel, digests)


def verify_entry_bundle(
    reg: Registry, entry: Entry, bundle_json: bytes, rel: str, digests: Mapping[str, str] | None = None
) -> None:
    """Verify bundle bytes for ``entry`` against the registry's policy and the files on disk."""
    ptype, payload = _verify_payload(reg, bundle_json)
    if ptype != INTOTO_PAYLOAD_TYPE:
        raise SignatureError(f"bundle payload type {ptype!r} is not an in-toto statement")
    try:
        st = json.loads(payload)
        if st.get("predicateType") != PREDICATE_TYPE:
            raise SignatureError(f"signed statement is not a tinyreg registry-entry statement ({st.get('predicateType')})")
        subjects = {(s["name"], s["digest"]["sha256"]) for s in st["subject"]}
        signed_entry = st["predicate"]["entry"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SignatureError("signed statement is malformed") from exc
    if signed_entry != entry["id"]:
        raise SignatureError(f"bundle {rel} signs entry '{signed_entry}', not '{entry['id']}' (swapped bundle?)")
    expected = {(f["path"], f["sha256"]) for f in signed_files(entry)}
    if subjects != expected:
        extra = sorted(p for p, _ in expected - subjects)
        raise SignatureError(f"signature does not cover the entry's files as pinned ({', '.join(extra) or 'set differs'})")
    for name, sha in sorted(subjects):
        actual = (digests or {}).get(name) or sha256_file(confine(reg.root, name, what="signed file")).sha256
        if actual != sha:
            raise SignatureError(f"{name} changed since it was signed")


def sign_entries(
    registry_path: Path,
    entry_id: str | None,
    *,
    key: Path | None = None,
    key_password: bytes | None = None,
    identity_token: str | None = None,
    staging: bool = False,
    trust_config: Path | None = None,
) -> list[str]:
    """Sign one entry (or all with ``entry_id=None``); returns the bundle paths written."""
    from registry.store.card import write_card
    from registry.store.entries import set_file_pin

    written = []
    with transaction(registry_path) as reg:
        if reg.is_legacy:
            raise UsageError("signing needs a schema_version 2 registry (every file pinned)")
        pol = policy_of(reg)
        ids = [entry_id] if entry_id else reg.ids()
        entries = [reg.get(i) for i in ids]
        for e in entries:
            stale = _stale_fields(reg, e)
            if stale:
                raise UsageError(f"pins of '{e['id']}' are out of date ({', '.join(stale)}); run 'tinyreg pin {e['id']}' first")
        if key is not None:
            from registry.signing._methods import sign_ec_key

            if pol.mode != "key":
                raise UsageError("the registry's policy is keyless; signing with --key would not verify")
            priv = sign_ec_key.load_private_key(key, key_password)
            assert pol.public_key is not None
            if sign_ec_key.public_key_hint(sign_ec_key.public_pem_of(priv)) != sign_ec_key.public_key_hint(pol.public_key.read_bytes()):
                raise UsageError("--key does not match the public key the registry pins")

            def do_sign(statement: bytes) -> bytes:
                return sign_ec_key.sign(statement, priv)
        else:
            if pol.mode != "keyless":
                raise UsageError("the registry's policy pins a public key: sign with --key PRIVATE.pem")
            from registry.signing._methods import sign_sigstore

            token = sign_sigstore.identity_token(identity_token)
            config = sign_sigstore.trust_config(staging, trust_config)

            def do_sign(statement: bytes) -> bytes:
                return sign_sigstore.sign(statement, token, config)

        for e in entries:
            rel = bundle_rel(e)
            bundle = do_sign(build_statement(e))
            # the pins were just checked against the files, so their digests stand for the bytes on disk
            digests = {str(f["path"]): str(f["sha256"]) for f in signed_files(e)}
            verify_entry_bundle(reg, e, bundle, rel, digests)  # a bundle that would not verify is never written
            reg.stage(rel, bundle)
            e["sigstore_bundle"] = rel
            set_file_pin(e, rel, "signature", bundle)
            write_card(reg, e)
            written.append(rel)
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
        (reg.root / TRUST_DIR).mkdir(exist_ok=True)
        if public_key is not None:
            if identity or issuer:
                raise UsageError("give --key or --identity/--issuer, not both")
            from registry.signing._methods.sign_ec_key import public_key_hint

            try:
                pem = public_key.read_bytes()
                public_key_hint(pem)
            except OSError as exc:
                raise InputError(f"{public_key}: cannot read") from exc
            except ValueError as exc:
                raise InputError(f"{public_key}: not a PEM public key") from exc
            rel = f"{TRUST_DIR}/signing-key.pub.pem"
            reg.stage(rel, pem)
            policy: dict[str, Any] = {"mode": "key", "public_key": rel}
        else:
            if not identity or not issuer:
                raise UsageError("keyless policy needs both --identity and --issuer (exact values)")
            rel = f"{TRUST_DIR}/trusted_root.json"
            src = trusted_root or _embedded_root(staging)
            from registry.signing._methods.verify_sigstore import load_trusted_root

            load_trusted_root(Path(src))
            reg.stage(rel, Path(src).read_bytes())
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
        raise InputError(f"sigstore-python ships no trusted root at {path}; pass --trusted-root")
    return path


def verify_bundle(
    bundle: Path, *, artifact: Path | None, identity: str, issuer: str, trusted_root: Path | None = None, staging: bool = False
) -> dict[str, Any]:
    """``tinyreg verify-bundle``: verify any Sigstore bundle offline."""
    from registry.signing._methods import verify_sigstore

    try:
        bundle_json = bundle.read_bytes()
    except OSError as exc:
        raise InputError(f"{bundle}: cannot read") from exc
    data = None
    if artifact is not None:
        try:
            data = artifact.read_bytes()
        except OSError as exc:
            raise InputError(f"{artifact}: cannot read") from exc
    root = trusted_root or _embedded_root(staging)
    out = verify_sigstore.verify(bundle_json, identity=identity, issuer=issuer, trusted_root=root, artifact=data)
    result: dict[str, Any] = {"bundle": str(bundle), "identity": identity, "issuer": issuer, "trusted_root": str(root), "ok": True}
    if out is not None:
        result["payload_type"] = out[0]
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            result["subjects"] = [s["name"] for s in json.loads(out[1]).get("subject", [])]
    return result
