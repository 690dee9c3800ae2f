"""The Sigstore keyless method: a Fulcio certificate + Rekor entry via sigstore-python.

:class:`SigstoreSigner` signs with an OIDC identity token; :class:`SigstoreVerifier` verifies
offline against a committed trusted root and an exact identity and issuer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._internal.jsonio import loads_json
from registry._internal.safeio import read_raw
from registry.errors import InputError, MissingDependency, SignatureError, UsageError

if TYPE_CHECKING:
    from registry.signing.policy import IdentityAnchor, TrustPolicy
    from registry.store.document import Registry

METHOD = "keyless"


def trust_config(staging: bool = False, path: Path | None = None) -> object:
    try:
        from sigstore.models import ClientTrustConfig
    except ImportError as exc:
        raise MissingDependency("keyless signing", "sign") from exc
    if path is not None:
        try:
            return ClientTrustConfig.from_json(read_raw(path, "bundle").decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a Sigstore client trust config ({exc.__class__.__name__})") from exc
    return ClientTrustConfig.staging() if staging else ClientTrustConfig.production()


def identity_token_of(explicit: str | None) -> object:
    """An OIDC identity token: the one given, else ambient CI credentials (GitHub Actions id-token: write)."""
    from sigstore.oidc import IdentityError, IdentityToken, detect_credential

    raw = explicit
    if raw is None:
        try:
            raw = detect_credential()
        except IdentityError as exc:
            raise UsageError(f"ambient OIDC credential detection failed: {exc}") from exc
    if not raw:
        raise UsageError("no OIDC identity token: give one, or run in CI with 'id-token: write'", hint="identity_token")
    try:
        return IdentityToken(raw)
    except IdentityError as exc:
        raise UsageError(f"identity token rejected: {exc}") from exc


def sign(statement: bytes, token: object, config: object) -> bytes:
    from sigstore.dsse import Statement
    from sigstore.sign import SigningContext

    ctx = SigningContext.from_trust_config(config)  # type: ignore[arg-type]
    with ctx.signer(token, cache=True) as signer:  # type: ignore[arg-type]
        bundle = signer.sign_dsse(Statement(statement))
    return (bundle.to_json() + "\n").encode()


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
                check_subject(payload, artifact)
            return ptype, payload
        if artifact is None:
            raise SignatureError("this bundle signs an artifact: give the artifact file to verify")
        verifier.verify_artifact(artifact, bundle, pol)  # type: ignore[attr-defined]
        return None
    except SignatureError:
        raise
    except (SigstoreError, ValueError) as exc:
        raise SignatureError(f"Sigstore verification failed: {_msg(exc)}") from exc


def check_subject(payload: bytes, artifact: bytes) -> None:
    digest = hashlib.sha256(artifact).hexdigest()
    try:
        subjects = loads_json(payload, "DSSE payload").get("subject", [])
        found = any(s.get("digest", {}).get("sha256") == digest for s in subjects)
    except (InputError, ValueError, AttributeError) as exc:
        raise SignatureError("DSSE payload is not an in-toto statement") from exc
    if not found:
        raise SignatureError(f"no subject of the signed statement has the artifact's sha256 {digest[:16]}...")


def handles(material: Any) -> bool:
    """A bundle of this method: anything but a public-key hint (a certificate, a Rekor entry)."""
    return not (isinstance(material, dict) and "publicKey" in material)


@dataclass
class SigstoreSigner:
    """Signs keylessly: an OIDC token (given, or ambient CI credentials) and a Sigstore instance's trust config.

    The token and the config are resolved by :meth:`prepare`, once the registry has said it accepts keyless signatures.
    """

    identity_token: str | None = None
    staging: bool = False
    trust_config_path: Path | None = None
    token: Any = None
    config: Any = None

    def prepare(self, reg: Registry) -> TrustPolicy | None:
        """Refuse a registry that pins a key; its keyless policy (if any), every bundle is checked under before it is written."""
        from registry.signing.policy import policy_from_registry

        declared = reg.doc.get("signing")
        mode = declared.get("mode") if isinstance(declared, dict) else None
        if mode == "key":
            raise UsageError("the registry's policy pins a public key: sign with its private key", hint="key")
        check = policy_from_registry(reg) if mode == "keyless" else None
        self.token = identity_token_of(self.identity_token)
        self.config = trust_config(self.staging, self.trust_config_path)
        return check

    def sign_entry(self, statement: bytes) -> bytes:
        return sign(statement, self.token, self.config)

    def sign_folder(self, statement: bytes) -> bytes:
        return sign(statement, self.token, self.config)


@dataclass(frozen=True)
class SigstoreVerifier:
    """Verifies keyless bundles offline: exact identity (SAN) and OIDC issuer, under one trusted root."""

    anchor: IdentityAnchor
    source: str = ""  # where the trusted root came from (a path), for what verify-bundle reports
    method = METHOD

    @classmethod
    def from_options(cls, identity: str, issuer: str, trusted_root: Path) -> SigstoreVerifier:
        from registry.signing.policy import IdentityAnchor, canonical_root

        try:
            root_bytes = read_raw(trusted_root, "bundle")
        except OSError as exc:
            raise InputError(f"{trusted_root}: cannot read the trusted root") from exc
        load_trusted_root(root_bytes, str(trusted_root))
        return cls(IdentityAnchor(identity, issuer, canonical_root(root_bytes, str(trusted_root))), str(trusted_root))

    handles = staticmethod(handles)

    def as_policy(self) -> TrustPolicy:
        """A trust policy that trusts this identity alone."""
        from registry.signing.policy import TrustPolicy

        return TrustPolicy(identities=(self.anchor,), source=self.anchor.identity)

    def describe(self) -> dict[str, Any]:
        return {"identity": self.anchor.identity, "issuer": self.anchor.issuer, "trusted_root": self.source}

    def is_envelope(self, bundle_json: bytes) -> bool:
        return is_dsse(bundle_json)

    def verify_dsse(self, bundle_json: bytes, what: str) -> tuple[str, bytes]:
        out = verify(bundle_json, identity=self.anchor.identity, issuer=self.anchor.issuer, trusted_root=self.anchor.trusted_root)
        if out is None:
            raise NotAnEnvelope(f"{what} must hold a DSSE envelope")
        return out

    def verify_artifact(self, bundle_json: bytes, artifact: bytes) -> None:
        verify(bundle_json, identity=self.anchor.identity, issuer=self.anchor.issuer, trusted_root=self.anchor.trusted_root,
               artifact=artifact)

    @staticmethod
    def none_trusted(what: str, source: str) -> SignatureError:
        return SignatureError(f"{what} is signed keylessly, but the trust policy ({source}) trusts no identities")

    @staticmethod
    def none_verified(what: str, source: str, errors: Sequence[SignatureError]) -> SignatureError:
        return SignatureError(f"{what} is signed by none of the identities the trust policy ({source}) trusts "
                              f"({errors[-1].diagnostics()})")


class NotAnEnvelope(SignatureError):
    """The bundle verifies but signs an artifact, where a DSSE statement was needed: no other identity can help."""
