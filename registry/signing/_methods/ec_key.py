"""The key method: a DSSE envelope signed with an ECDSA P-256 key, in a Sigstore v0.3 bundle.

Air-gapped signing: the bundle carries a ``publicKey`` hint instead of a certificate and no
transparency-log entry; the verifier pins the public key (cosign's
``verify-blob-attestation --key ... --new-bundle-format`` reads the same shape).
:class:`KeySigner` signs, :class:`KeyVerifier` verifies.

The hint is only a hint: model_signing writes hex(sha256(PEM)), cosign
base64(sha256(DER)), others nothing. The signature is checked with the pinned
key whatever the hint says.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._internal.jsonio import loads_json
from registry._internal.safeio import read_raw
from registry.errors import InputError, SignatureError, UsageError
from registry.signing._methods import BUNDLE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE, b64, pae, unb64

if TYPE_CHECKING:
    from registry.signing.policy import KeyAnchor, TrustPolicy
    from registry.store.document import Registry

METHOD = "key"


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


def handles(material: Any) -> bool:
    """A bundle of this method: its verification material is a public-key hint."""
    return isinstance(material, dict) and "publicKey" in material


@dataclass
class KeySigner:
    """Signs with an ECDSA P-256 private key (PEM): entry bundles in the DSSE shape above, the folder as model_signing does.

    The key file is read by :meth:`prepare`, once the registry has said it accepts key signatures.
    """

    path: Path
    password: bytes | None = None
    private_key: Any = None
    source: str = "the signing key"

    def prepare(self, reg: Registry) -> TrustPolicy:
        """Refuse a registry whose policy cannot accept this key; the policy every bundle is checked under before it is written."""
        from registry.signing.policy import KeyAnchor, TrustPolicy, key_fingerprint, policy_from_registry

        mode = _mode(reg)
        if mode not in (None, "key"):
            raise UsageError("the registry's policy is keyless; a signature made with a private key would not verify",
                             hint="keyless")
        self.private_key = load_private_key(self.path, self.password)
        pub = public_pem_of(self.private_key)
        check = TrustPolicy(keys=(KeyAnchor(pub, key_fingerprint(pub, str(self.path))),), source=self.source)
        if mode == "key" and policy_from_registry(reg).keys[0].sha256 != check.keys[0].sha256:
            raise UsageError("the private key does not match the public key the registry pins", hint="key")
        return check

    def sign_entry(self, statement: bytes) -> bytes:
        return sign(statement, self.private_key)

    def sign_folder(self, statement: bytes) -> bytes:
        from registry.signing._methods import model_signing_v1 as oms

        return oms.sign_key(statement, self.private_key)


@dataclass(frozen=True)
class KeyVerifier:
    """Verifies key-mode bundles against one pinned public key."""

    anchor: KeyAnchor
    source: str = ""  # where the key came from (a path)
    method = METHOD

    @classmethod
    def from_file(cls, path: Path) -> KeyVerifier:
        from registry.signing.policy import KeyAnchor, key_fingerprint

        try:
            pem = read_raw(path, "key")
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
        return cls(KeyAnchor(pem, key_fingerprint(pem, str(path))), str(path))

    def as_policy(self) -> TrustPolicy:
        """A trust policy that trusts this key alone."""
        from registry.signing.policy import TrustPolicy

        return TrustPolicy(keys=(self.anchor,), source=self.source)

    handles = staticmethod(handles)

    def describe(self) -> dict[str, Any]:
        return {"key_sha256": self.anchor.sha256}

    def is_envelope(self, bundle_json: bytes) -> bool:
        return True  # a key-mode bundle always holds a DSSE envelope (parse() says what else is wrong)

    def verify_dsse(self, bundle_json: bytes, what: str) -> tuple[str, bytes]:
        return verify(bundle_json, self.anchor.pem)

    def verify_artifact(self, bundle_json: bytes, artifact: bytes) -> None:
        raise SignatureError("a key-mode bundle signs a DSSE statement, not an artifact")

    @staticmethod
    def none_trusted(what: str, source: str) -> SignatureError:
        return SignatureError(f"{what} is signed with a key, but the trust policy ({source}) trusts no keys")

    @staticmethod
    def none_verified(what: str, source: str, errors: Sequence[SignatureError]) -> SignatureError:
        last = errors[-1]
        if "DSSE signature" in last.diagnostics():
            return SignatureError(f"{what}: DSSE signature does not verify with any of the {len(errors)} key(s) "
                                  f"the trust policy ({source}) trusts")
        return SignatureError(f"{what}: {last.diagnostics()}")


def _mode(reg: Registry) -> str | None:
    declared = reg.doc.get("signing")
    mode = declared.get("mode") if isinstance(declared, dict) else None
    return mode if isinstance(mode, str) else None
