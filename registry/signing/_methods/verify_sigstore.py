"""Offline verification of Sigstore bundles against a committed trusted root and an exact identity."""

from __future__ import annotations

import hashlib
from pathlib import Path

from registry._internal.jsonio import loads_json
from registry._internal.safeio import read_raw
from registry.errors import InputError, MissingDependency, SignatureError


def load_trusted_root(trusted_root: Path | bytes, label: str | None = None) -> object:
    """A sigstore TrustedRoot from a file or from the JSON bytes of one (InputError if it is not one)."""
    try:
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import TrustedRoot
        from sigstore_models.trustroot import v1 as trustroot_v1
    except ImportError as exc:
        raise MissingDependency("Sigstore verification", "sign") from exc
    name = label or (str(trusted_root) if isinstance(trusted_root, Path) else "trusted root")
    try:
        data = read_raw(trusted_root, "bundle") if isinstance(trusted_root, Path) else trusted_root
        return TrustedRoot(trustroot_v1.TrustedRoot.from_json(data))
    except FileNotFoundError as exc:
        raise InputError(f"{name}: no such trusted root") from exc
    except (ValueError, SigstoreError, OSError) as exc:
        raise InputError(f"{name}: not a Sigstore trusted root ({exc.__class__.__name__})") from exc


def _load(bundle_json: bytes, trusted_root: Path | bytes) -> tuple[object, object]:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

    root = load_trusted_root(trusted_root)
    try:
        bundle = Bundle.from_json(bundle_json)
    except (ValueError, SigstoreError, KeyError, TypeError) as exc:
        raise SignatureError(f"malformed Sigstore bundle: {_msg(exc)}") from exc
    return Verifier(trusted_root=root), bundle  # type: ignore[arg-type]


def _msg(exc: BaseException) -> str:
    diag = getattr(exc, "diagnostics", None)
    text = diag() if callable(diag) else str(exc)
    return " ".join(str(text).split())[:300] or exc.__class__.__name__


def is_dsse(bundle_json: bytes) -> bool:
    try:
        doc = loads_json(bundle_json, "bundle")
    except InputError:
        return False
    return isinstance(doc, dict) and "dsseEnvelope" in doc


def verify(
    bundle_json: bytes, *, identity: str, issuer: str, trusted_root: Path | bytes, artifact: bytes | None = None
) -> tuple[str, bytes] | None:
    """Verify offline. DSSE bundles return (payload type, payload); artifact bundles need ``artifact``."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.verify import policy

    verifier, bundle = _load(bundle_json, trusted_root)
    pol = policy.Identity(identity=identity, issuer=issuer)
    try:
        if is_dsse(bundle_json):
            ptype, payload = verifier.verify_dsse(bundle, pol)  # type: ignore[attr-defined]
            if artifact is not None:
                _check_subject(payload, artifact)
            return ptype, payload
        if artifact is None:
            raise SignatureError("this bundle signs an artifact: give the artifact file to verify")
        verifier.verify_artifact(artifact, bundle, pol)  # type: ignore[attr-defined]
        return None
    except SignatureError:
        raise
    except (SigstoreError, ValueError) as exc:
        raise SignatureError(f"Sigstore verification failed: {_msg(exc)}") from exc


def _check_subject(payload: bytes, artifact: bytes) -> None:
    digest = hashlib.sha256(artifact).hexdigest()
    try:
        subjects = loads_json(payload, "DSSE payload").get("subject", [])
        found = any(s.get("digest", {}).get("sha256") == digest for s in subjects)
    except (InputError, ValueError, AttributeError) as exc:
        raise SignatureError("DSSE payload is not an in-toto statement") from exc
    if not found:
        raise SignatureError(f"no subject of the signed statement has the artifact's sha256 {digest[:16]}...")
