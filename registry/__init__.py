"""tinyreg: registry and artifact toolchain for tiny ONNX image and video quality models.

The public, stable API is what ``__all__`` lists; every name is imported lazily on first use,
so ``import registry`` loads neither onnxruntime nor torch. One argument order everywhere:
the entry id first, the registry as the keyword ``registry=`` (a ``registry.json`` or a folder,
looked up exactly as the CLI's ``--registry``; None: ``$TINYREG_REGISTRY``, else the current
folder and its parents)::

    import registry

    sess = registry.load("ssim_luma")                          # onnxruntime session from pinned bytes
    res = registry.score_images("ssim_luma", "ref.png", "dist.png", registry="model/tiny")
    print(res.scores[0])
    report = registry.verify_registry("model/tiny", trust="trust.json")  # the pre-merge gate
    for finding in report.findings:
        print(finding.entry, finding.check, finding.message)
    try:
        registry.load("dists_vgg16", trust="trust.json")
    except registry.SignatureError as exc:
        print(exc.diagnostics())

Everything else (``registry.store``, ``registry.onnx``, ...) is importable but may change
between minor versions; ``registry.plugin`` is the stable SDK for model families.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from registry._internal.version import __version__

# public name -> (module, attribute in it); the one table behind ``__all__`` and ``__getattr__``
# (huggingface_hub's _SUBMOD_ATTRS pattern). To publish a name, add a row here: tests/test_api.py
# checks that every row imports, has a docstring, and that ``import registry`` stays light.
_LAZY: dict[str, tuple[str, str]] = {
    # load a model from verified bytes
    "load": ("registry.runtime.loader", "load"),
    "load_entry": ("registry.runtime.loader", "load_entry"),
    "SmokeModelWarning": ("registry.runtime.loader", "SmokeModelWarning"),
    # the pre-merge gate
    # (``registry.verify`` is the module that holds it: a package attribute cannot be both)
    "verify_registry": ("registry.verify", "verify_registry"),
    "Report": ("registry.verify", "Report"),
    "Finding": ("registry.verify", "Finding"),
    # signing
    "sign": ("registry.signing.sign", "sign"),
    # scoring
    "score_images": ("registry.scoring.score", "score_images"),
    "score_videos": ("registry.scoring.score", "score_videos"),
    "score_dataset": ("registry.scoring.dataset", "score_dataset"),
    "ScoreResult": ("registry.scoring.score", "ScoreResult"),
    "DatasetOptions": ("registry.scoring.dataset", "DatasetOptions"),
    "DatasetReport": ("registry.scoring.dataset", "DatasetReport"),
    # distribution through OCI registries (docs/distribution.md)
    "push": ("registry.distribution.pusher", "push"),
    "pull": ("registry.distribution.puller", "pull"),
    "PushResult": ("registry.distribution.pusher", "PushResult"),
    "PullResult": ("registry.distribution.puller", "PullResult"),
    # finding the registry
    "find_registry": ("registry.store.document", "find_registry"),
    # errors (``except registry.SignatureError``)
    "Error": ("registry.errors", "Error"),
    "UsageError": ("registry.errors", "UsageError"),
    "InputError": ("registry.errors", "InputError"),
    "RegistryNotFound": ("registry.errors", "RegistryNotFound"),
    "PathEscape": ("registry.errors", "PathEscape"),
    "SchemaError": ("registry.errors", "SchemaError"),
    "IntegrityError": ("registry.errors", "IntegrityError"),
    "SignatureError": ("registry.errors", "SignatureError"),
    "ConflictError": ("registry.errors", "ConflictError"),
    "SmokeOverwriteError": ("registry.errors", "SmokeOverwriteError"),
    "MissingWeight": ("registry.errors", "MissingWeight"),
    "MissingDependency": ("registry.errors", "MissingDependency"),
    "CheckFailed": ("registry.errors", "CheckFailed"),
}

__all__ = [  # written out for static tools; tests/test_api.py checks it equals the table
    "CheckFailed",
    "ConflictError",
    "DatasetOptions",
    "DatasetReport",
    "Error",
    "Finding",
    "InputError",
    "IntegrityError",
    "MissingDependency",
    "MissingWeight",
    "PathEscape",
    "PullResult",
    "PushResult",
    "RegistryNotFound",
    "Report",
    "SchemaError",
    "ScoreResult",
    "SignatureError",
    "SmokeModelWarning",
    "SmokeOverwriteError",
    "UsageError",
    "__version__",
    "find_registry",
    "load",
    "load_entry",
    "pull",
    "push",
    "score_dataset",
    "score_images",
    "score_videos",
    "sign",
    "verify_registry",
]

if TYPE_CHECKING:
    from registry.distribution.puller import PullResult, pull
    from registry.distribution.pusher import PushResult, push
    from registry.errors import (
        CheckFailed,
        ConflictError,
        Error,
        InputError,
        IntegrityError,
        MissingDependency,
        MissingWeight,
        PathEscape,
        RegistryNotFound,
        SchemaError,
        SignatureError,
        SmokeOverwriteError,
        UsageError,
    )
    from registry.runtime.loader import SmokeModelWarning, load, load_entry
    from registry.scoring.dataset import DatasetOptions, DatasetReport, score_dataset
    from registry.scoring.score import ScoreResult, score_images, score_videos
    from registry.signing.sign import sign
    from registry.store.document import find_registry
    from registry.verify import Finding, Report, verify_registry


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'registry' has no attribute '{name}'") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
