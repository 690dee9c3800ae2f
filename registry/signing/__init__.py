"""Signing entries and the registry, and verifying them offline."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

__all__ = ["entries", "policy", "sign", "snapshot", "statement"]


def sign(
    entry_id: str | None = None,
    *,
    registry: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
    key_password: bytes | None = None,
    identity_token: str | None = None,
    staging: bool = False,
    trust_config: str | os.PathLike[str] | None = None,
    expires_in_days: int | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Sign entry ``entry_id`` (None: every entry) and the whole-folder snapshot; returns the paths written.

    ``registry``: a ``registry.json`` or its folder (None: found as every command finds it).
    ``key``: an ECDSA P-256 private key (PEM); without one, keyless Sigstore signing with
    ``identity_token`` or the ambient CI credentials. ``expires_in_days``: the snapshot's expiry
    (None: the default, 365 days). Each entry gets ``<onnx>.sigstore.json`` over its whole row and
    every file it uses; ``registry.sigstore.json`` signs every file of the folder.
    """
    from registry.signing.entries import sign_entries
    from registry.signing.snapshot import DEFAULT_EXPIRES_DAYS
    from registry.store.document import find_registry

    return sign_entries(
        find_registry(registry), entry_id, key=None if key is None else Path(key), key_password=key_password,
        identity_token=identity_token, staging=staging, trust_config=None if trust_config is None else Path(trust_config),
        expires_in_days=DEFAULT_EXPIRES_DAYS if expires_in_days is None else expires_in_days, now=now,
    )
