"""Keyless signing with Sigstore (Fulcio certificate + Rekor entry) via sigstore-python."""

from __future__ import annotations

from pathlib import Path

from registry._internal.safeio import read_raw
from registry.errors import InputError, MissingDependency, UsageError


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


def identity_token(explicit: str | None) -> object:
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
