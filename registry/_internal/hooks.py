"""Services the store needs from the layers above it, handed down by the package root (``registry/__init__.py``).

A writer that finds an interrupted update (``store/commit.py``) must check the folder it would
leave under the consumer's trust policy before landing it. The trust policy (``signing/``) and the
verifier (``verify.py``) sit above the store; instead of the store importing upward (which the
layer contracts forbid, docs/architecture.md), the package root, which always runs first, binds
them here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# trust (a policy, a policy file, or None for $TINYREG_TRUST) -> the resolved policy, or None
resolve_trust: Callable[[Any], Any] | None = None
# (registry.json of a folder, a resolved policy) -> the first error finding as "entry: message"; None when it verifies
verify_folder: Callable[[Path, Any], str | None] | None = None


def need(fn: T | None, what: str) -> T:
    """The bound service; a bug (exit 70) when the package root did not bind it."""
    if fn is None:
        raise RuntimeError(f"registry._internal.hooks.{what} is not bound (registry/__init__.py binds it)")
    return fn
