"""Optional dependencies: which extra installs each module, and the one line a missing one becomes."""

from __future__ import annotations

from registry.errors import MissingDependency

# top-level module -> the extra of pyproject.toml that installs it
EXTRAS: dict[str, str] = {
    "av": "video",
    "ray": "scale",
    "sigstore": "sign",
    "torch": "export",
    "torchvision": "export",
    "dists_pytorch": "export",
    "skimage": "export",
    "tqdm": "export",
    "lpips": "export",
}


def missing_dependency(exc: ImportError) -> MissingDependency | None:
    """The ``MissingDependency`` for an import of an optional module that failed, or None (any other import error is a bug)."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    extra = EXTRAS.get(name)
    if extra is None:
        return None
    return MissingDependency(f"this command ({name} is not installed)", extra)
