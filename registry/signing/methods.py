"""Signing methods behind two types: a :class:`Signer` makes bundles, a :class:`Verifier` checks them.

One private module per method (``signing/_methods/``), each with its Signer and Verifier:

- ``ec_key``: an ECDSA P-256 key (air-gapped; the bundle carries a public-key hint),
- ``sigstore_keyless``: Sigstore keyless (an OIDC identity, a Fulcio certificate, a Rekor entry),
- ``model_signing_v1``: the OpenSSF Model Signing v1.0 folder format (the registry snapshot,
  ``verify-bundle`` on a folder), signed and verified through either method.

Callers build a Signer (or a Verifier) from their options once, with :func:`signer_from_options`
or :func:`verifier_from_options`, and never branch on the method again. Adding a method is one
module under ``_methods/`` with both types, listed in :data:`VERIFIER_TYPES` and the factories
below (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from registry.errors import InputError, UsageError
from registry.signing._methods.ec_key import KeySigner, KeyVerifier
from registry.signing._methods.sigstore_keyless import SigstoreSigner, SigstoreVerifier

if TYPE_CHECKING:
    from registry.errors import SignatureError
    from registry.signing.policy import TrustPolicy
    from registry.store.document import Registry

__all__ = ["VERIFIER_TYPES", "Signer", "Verifier", "embedded_trusted_root", "method_of", "signer_from_options",
           "verifier_from_options"]


class Signer(Protocol):
    """Makes the bundles of one signing method."""

    def prepare(self, reg: Registry) -> TrustPolicy | None:
        """Refuse (UsageError) a registry whose signing policy cannot accept this signer's bundles, then load its credentials.

        Returns the policy every new bundle must verify under before it is written (None: none to check).
        """
        ...

    def sign_entry(self, statement: bytes) -> bytes:
        """A Sigstore bundle over a DSSE envelope of ``statement`` (an in-toto Statement, JSON bytes)."""
        ...

    def sign_folder(self, statement: bytes) -> bytes:
        """A bundle over an OpenSSF Model Signing v1.0 folder statement, as ``model_signing`` writes it."""
        ...


class Verifier(Protocol):
    """Checks the bundles of one signing method against one trusted key or identity."""

    method: str

    def as_policy(self) -> TrustPolicy:
        """A trust policy that trusts this verifier's key or identity alone."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the verifier trusts, for a report (``key_sha256``; ``identity``, ``issuer``, ``trusted_root``)."""
        ...

    def is_envelope(self, bundle_json: bytes) -> bool:
        """Whether the bundle holds a DSSE envelope (else it signs an artifact directly)."""
        ...

    def verify_dsse(self, bundle_json: bytes, what: str) -> tuple[str, bytes]:
        """(payload type, payload) of a DSSE bundle that verifies; SignatureError otherwise."""
        ...

    def verify_artifact(self, bundle_json: bytes, artifact: bytes) -> None:
        """SignatureError unless the bundle signs ``artifact`` itself."""
        ...


class VerifierType(Protocol):
    """A Verifier class: which bundles it handles, and how a policy words that none of its anchors verified one."""

    def handles(self, material: Any) -> bool: ...

    def none_trusted(self, what: str, source: str) -> SignatureError: ...

    def none_verified(self, what: str, source: str, errors: Sequence[SignatureError]) -> SignatureError: ...


# the methods a bundle may be signed with, asked in this order which one made it
VERIFIER_TYPES: tuple[type[KeyVerifier] | type[SigstoreVerifier], ...] = (KeyVerifier, SigstoreVerifier)


def method_of(material: Any) -> type[KeyVerifier] | type[SigstoreVerifier]:
    """The verifier type of a bundle, from its ``verificationMaterial``."""
    for t in VERIFIER_TYPES:
        if t.handles(material):
            return t
    raise ValueError("no signing method handles this bundle")  # unreachable: keyless takes every other bundle


def signer_from_options(
    *, key: Path | None = None, key_password: bytes | None = None, identity_token: str | None = None,
    staging: bool = False, trust_config: Path | None = None,
) -> Signer:
    """The signer the options name: a private key file, else Sigstore keyless (token given or ambient)."""
    if key is not None:
        if identity_token or staging or trust_config is not None:
            raise UsageError("an identity token, the staging instance and a trust config apply to keyless signing, "
                             "not to signing with a private key")
        return KeySigner(key, key_password)
    return SigstoreSigner(identity_token, staging, trust_config)


def verifier_from_options(
    *, key: Path | None = None, identity: str | None = None, issuer: str | None = None,
    trusted_root: Path | None = None, staging: bool = False,
) -> Verifier:
    """The verifier the options name: a public key file, or an exact identity and issuer under a trusted root."""
    if key is not None:
        if identity or issuer:
            raise UsageError("give a public key or a keyless identity and issuer, not both", hint="trust")
        if trusted_root is not None or staging:
            raise UsageError("a trusted root and the staging instance apply to keyless bundles, not to a public key")
        return KeyVerifier.from_file(key)
    if not identity or not issuer:
        raise UsageError("verifying a bundle needs a public key or a keyless identity and issuer", hint="trust")
    if trusted_root is not None and staging:
        raise UsageError("give a trusted root file or the staging instance, not both", hint="trusted_root_or_staging")
    return SigstoreVerifier.from_options(identity, issuer, trusted_root or embedded_trusted_root(staging))


def embedded_trusted_root(staging: bool) -> Path:
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
