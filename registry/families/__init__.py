"""Model families are plugins found through the ``tinyreg.families`` entry point group.

Each entry point names a module attribute holding a :class:`registry.plugin.Family`.
Adding a family means publishing such an entry point; the core does not change.
In a bare source tree without installed metadata, the family packages shipped
in this folder are found by scanning it (each exposes ``FAMILY``).
"""

from __future__ import annotations

import functools
import pkgutil
from importlib import import_module, metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.plugin import Family

GROUP = "tinyreg.families"

__all__ = ["GROUP", "all_families", "family_names", "get_family"]


@functools.cache
def _specs() -> dict[str, str]:
    found = {ep.name: ep.value for ep in metadata.entry_points(group=GROUP)}
    if found:
        return found
    return {m.name: f"{__name__}.{m.name}:FAMILY" for m in pkgutil.iter_modules(__path__) if m.ispkg}


def family_names() -> list[str]:
    """Names of the installed families (from entry point metadata; nothing is imported)."""
    return sorted(_specs())


@functools.cache
def get_family(name: str) -> Family:
    from registry.plugin import Family, UsageError

    specs = _specs()
    if name not in specs:
        raise UsageError(f"unknown model family '{name}' (installed: {', '.join(sorted(specs)) or 'none'})")
    mod, _, attr = specs[name].partition(":")
    try:
        fam = getattr(import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"model family '{name}' cannot be loaded from {specs[name]} ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(fam, Family) or fam.meta.name != name:
        raise UsageError(f"entry point '{name}' ({specs[name]}) does not hold a tinyreg Family named '{name}'")
    return fam


def all_families() -> list[Family]:
    return [get_family(n) for n in family_names()]
