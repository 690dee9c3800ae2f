"""Read upstream torch weight files: pinned bytes in, ``torch.load(weights_only=True)``, never unpickling code."""

from __future__ import annotations

import io
from typing import Any

from registry.errors import InputError, MissingDependency


def torch_load(data: bytes, what: str) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency(f"reading {what}", "export") from exc
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad pickles; never unpickle arbitrary code
        raise InputError(f"{what}: not a weights-only torch file ({exc.__class__.__name__})") from exc
