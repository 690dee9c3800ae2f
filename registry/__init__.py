"""tinyreg: registry and artifact toolchain for tiny ONNX quality models.

Public entry points are imported lazily so that ``import registry`` stays cheap:
``registry.load(id)`` returns an onnxruntime session built from pinned bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from registry._internal.version import __version__

if TYPE_CHECKING:
    from registry.runtime.loader import load as load

__all__ = ["__version__", "load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from registry.runtime.loader import load

        return load
    raise AttributeError(name)


# The composition root: the store's writer recovery needs the trust policy and the verifier, which sit
# above it; they are bound here, where every import of the package starts (registry/_internal/hooks.py).
def _resolve_trust(trust: Any) -> Any:
    from registry.signing.policy import resolve_trust

    return resolve_trust(trust)


def _verify_folder(registry_json: Any, policy: Any) -> str | None:
    from registry.verify import verify_registry

    report = verify_registry(registry_json, trust=policy)
    return None if report.ok else f"{report.errors[0].entry}: {report.errors[0].message}"


def _bind() -> None:
    from registry._internal import hooks

    hooks.resolve_trust = _resolve_trust
    hooks.verify_folder = _verify_folder


_bind()
