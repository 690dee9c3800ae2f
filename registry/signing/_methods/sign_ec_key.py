"""Air-gapped signing: a DSSE envelope signed with an ECDSA P-256 key, in a Sigstore v0.3 bundle.

The bundle carries a ``publicKey`` hint instead of a certificate and no
transparency-log entry; the verifier pins the public key (cosign's
``verify-blob-attestation --key ... --new-bundle-format`` reads the same shape).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from registry._internal.safeio import read_raw
from registry.errors import InputError, UsageError
from registry.signing._methods import BUNDLE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE, b64, pae


def load_private_key(path: Path, password: bytes | None = None) -> object:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(read_raw(path, "key"), password=password)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such key file") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # UnsupportedAlgorithm: e.g. an unknown curve
        raise InputError(f"{path}: not a readable PEM private key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise UsageError(f"{path}: tinyreg signs with ECDSA P-256 keys only")
    return key


def public_key_hint(public_pem: bytes) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

    der = load_pem_public_key(public_pem).public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return b64(hashlib.sha256(der).digest())


def public_pem_of(private_key: object) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pem: bytes = private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
    return pem


def sign(statement: bytes, private_key: object) -> bytes:
    """Bundle JSON bytes for ``statement`` (an in-toto Statement, JSON bytes)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    sig = private_key.sign(pae(INTOTO_PAYLOAD_TYPE, statement), ec.ECDSA(hashes.SHA256()))  # type: ignore[attr-defined]
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": public_key_hint(public_pem_of(private_key))}, "tlogEntries": []},
        "dsseEnvelope": {"payload": b64(statement), "payloadType": INTOTO_PAYLOAD_TYPE, "signatures": [{"sig": b64(sig)}]},
    }
    return (json.dumps(bundle, indent=2, sort_keys=True) + "\n").encode()
