"""tinyreg: registry and artifact toolchain for tiny ONNX quality models.

Public entry points are imported lazily so that ``import registry`` stays cheap:
``registry.load(id)`` returns an onnxruntime session built from pinned bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from registry.runtime.loader import load as load

__all__ = ["__version__", "load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from registry.runtime.loader import load

        return load
    raise AttributeError(name)
