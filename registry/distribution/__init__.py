"""Push and pull signed registry entries through OCI registries (docs/distribution.md).

``pull(ref, registry=DEST, trust=POLICY)`` verifies an entry's signature under the
consumer's policy before it fetches any blob, streams and hashes every blob, and lands the
entry in DEST as one transaction; ``push(entry_id, ref)`` publishes a verified entry as a
ModelPack artifact with its signature attached as a referrer. Imported lazily: importing
``registry`` never loads the transport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.distribution.puller import PullResult, pull
    from registry.distribution.pusher import PushResult, push

__all__ = ["PullResult", "PushResult", "pull", "push"]


def __getattr__(name: str) -> Any:
    if name in ("pull", "PullResult"):
        from registry.distribution import puller as _pull

        return getattr(_pull, name)
    if name in ("push", "PushResult"):
        from registry.distribution import pusher as _push

        return getattr(_push, name)
    raise AttributeError(f"module 'registry.distribution' has no attribute {name!r}")
