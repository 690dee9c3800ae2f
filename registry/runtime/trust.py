"""``registry.load(..., trust=...)``: fail closed unless what is loaded verifies under the consumer's policy.

Above ``signing`` and ``distribution``: a registry assembled by ``pull`` is checked entry by
entry (docs/distribution.md), any other against its signed snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from registry.errors import SignatureError
from registry.store import layout
from registry.store.document import Entry, Registry

if TYPE_CHECKING:
    from registry.signing.policy import TrustPolicy


def enforce_trust(
    reg: Registry, entry: Entry, policy: TrustPolicy, *, registry_bytes: bytes, digests: Mapping[str, str],
    now: datetime | None = None,
) -> None:
    """Fail closed (SignatureError) unless the snapshot and the entry verify under the consumer's ``policy``.

    ``registry_bytes`` are the bytes of registry.json that were parsed; ``digests`` the sha256 of
    every other file already read, so what is checked is what is used. The snapshot is checked
    for those files only (``verify --trust`` checks every file of the folder).
    """
    from registry._internal.hashing import sha256_bytes
    from registry.signing.snapshot import check_registry_snapshot, snapshot_field

    snapshot_field(reg.doc, str(reg.path))  # a malformed snapshot (no version) is bad input, before anything else
    if reg.is_legacy:
        raise SignatureError(f"a schema_version {reg.schema_version} registry cannot be signed; the trust policy refuses it")
    from registry.signing.policy import policy_inside

    inside = policy_inside(policy, reg.root)
    if inside:
        raise SignatureError(inside)
    # the bundle is read once: the bytes hashed for the snapshot or pull record are the bytes verified below
    from registry.signing.verify import read_entry_bundle, verify_entry_bundle

    rel, bundle = read_entry_bundle(reg, entry)
    bundle_sha = sha256_bytes(bundle).sha256
    used = {**digests, rel: bundle_sha, layout.REGISTRY_NAME: sha256_bytes(registry_bytes).sha256}
    # the snapshot must sign registry.json, the bundle and every file loaded, as read; other entries' files are not hashed
    from registry.distribution.state import check_pulled_entries, is_pulled_folder

    if is_pulled_folder(reg.root):  # a registry assembled by pull: entry by entry (docs/distribution.md)
        check_pulled_entries(reg, [entry], known={rel: bundle_sha}, now=now)
    else:
        check_registry_snapshot(reg.root, policy, doc=reg.doc, now=now, only=used)
    verify_entry_bundle(reg, entry, bundle, rel, policy=policy, digests=digests)
