"""Model families are plugins found through the ``tinyreg.families`` entry point group.

Each entry point names a module attribute holding a :class:`registry.families.base.Family`.
Adding a family means publishing such an entry point; the core does not change.
"""

from __future__ import annotations

import functools
from importlib import import_module, metadata
from typing import TYPE_CHECKING

from registry.errors import UsageError

if TYPE_CHECKING:
    from registry.families.base import Family

GROUP = "tinyreg.families"
# Used only when the distribution's metadata is absent (running from a bare source tree).
_FALLBACK = {"dists": "registry.families.dists:FAMILY", "lpips": "registry.families.lpips:FAMILY"}


def _load(spec: str) -> Family:
    mod, _, attr = spec.partition(":")
    fam: Family = getattr(import_module(mod), attr)
    return fam


@functools.cache
def _specs() -> dict[str, str]:
    found = {ep.name: ep.value for ep in metadata.entry_points(group=GROUP)}
    return found or dict(_FALLBACK)


def family_names() -> list[str]:
    return sorted(_specs())


def get_family(name: str) -> Family:
    specs = _specs()
    if name not in specs:
        raise UsageError(f"unknown model family '{name}' (known: {', '.join(sorted(specs))})")
    return _load(specs[name])
