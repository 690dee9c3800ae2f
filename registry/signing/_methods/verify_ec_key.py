"""Verify a key-mode bundle (DSSE + publicKey hint) against a pinned ECDSA P-256 public key."""

from __future__ import annotations

import binascii
import json

from registry.errors import SignatureError
from registry.signing._methods import BUNDLE_MEDIA_TYPE, pae, unb64
from registry.signing._methods.sign_ec_key import public_key_hint


def verify(bundle_json: bytes, public_pem: bytes) -> tuple[str, bytes]:
    """(payload type, payload) of a bundle signed by the key of ``public_pem``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        doc = json.loads(bundle_json)
        if doc.get("mediaType") != BUNDLE_MEDIA_TYPE:
            raise SignatureError(f"bundle media type {doc.get('mediaType')!r} is not {BUNDLE_MEDIA_TYPE}")
        hint = doc["verificationMaterial"]["publicKey"]["hint"]
        env = doc["dsseEnvelope"]
        payload = unb64(env["payload"])
        ptype = str(env["payloadType"])
        sigs = env["signatures"]
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise SignatureError(f"not a key-mode Sigstore bundle with a DSSE envelope ({exc.__class__.__name__})") from exc
    if hint != public_key_hint(public_pem):
        raise SignatureError("bundle was signed by a different key than the one the registry pins")
    key = load_pem_public_key(public_pem)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureError("pinned public key is not an EC key")
    if not isinstance(sigs, list) or len(sigs) != 1:
        raise SignatureError("expected exactly one DSSE signature")
    try:
        key.verify(unb64(sigs[0]["sig"]), pae(ptype, payload), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise SignatureError("DSSE signature does not verify with the pinned public key") from exc
    return ptype, payload
