"""Verify a key-mode bundle (DSSE + publicKey hint) against a pinned ECDSA public key.

The hint is only a hint: model_signing writes hex(sha256(PEM)), cosign
base64(sha256(DER)), others nothing. The signature is checked with the pinned
key whatever the hint says.
"""

from __future__ import annotations

import binascii

from registry._internal.jsonio import loads_json
from registry.errors import InputError, SignatureError
from registry.signing._methods import BUNDLE_MEDIA_TYPE, pae, unb64


def parse(bundle_json: bytes) -> tuple[str, bytes, bytes]:
    """(payload type, payload, signature) of a key-mode bundle with one DSSE signature."""
    try:
        doc = loads_json(bundle_json, "bundle")
        if doc.get("mediaType") != BUNDLE_MEDIA_TYPE:
            raise SignatureError(f"bundle media type {doc.get('mediaType')!r} is not {BUNDLE_MEDIA_TYPE}")
        if not isinstance(doc["verificationMaterial"]["publicKey"], dict):
            raise TypeError("publicKey")
        env = doc["dsseEnvelope"]
        payload = unb64(env["payload"])
        ptype = str(env["payloadType"])
        sigs = env["signatures"]
        if not isinstance(sigs, list) or len(sigs) != 1:
            raise SignatureError("expected exactly one DSSE signature")
        sig = unb64(sigs[0]["sig"])
    except SignatureError:
        raise
    except InputError as exc:
        raise SignatureError(f"not a key-mode Sigstore bundle: {exc.diagnostics()}") from exc
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise SignatureError(f"not a key-mode Sigstore bundle with a DSSE envelope ({exc.__class__.__name__})") from exc
    return ptype, payload, sig


def verify(bundle_json: bytes, public_pem: bytes) -> tuple[str, bytes]:
    """(payload type, payload) of a bundle whose DSSE signature verifies with ``public_pem``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    ptype, payload, sig = parse(bundle_json)
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        key = load_pem_public_key(public_pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError("pinned public key is not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignatureError("pinned public key is not an EC key")
    algs: dict[str, hashes.HashAlgorithm] = {"secp256r1": hashes.SHA256(), "secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}
    alg = algs.get(key.curve.name)
    if alg is None:
        raise SignatureError(f"pinned public key uses an unsupported curve {key.curve.name}")
    try:
        key.verify(sig, pae(ptype, payload), ec.ECDSA(alg))
    except InvalidSignature as exc:
        raise SignatureError("DSSE signature does not verify with the pinned public key") from exc
    return ptype, payload
