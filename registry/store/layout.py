"""Every file name the registry derives, in one place.

An entry names its fp32 model (``onnx``); everything else an entry owns is found
from that name or from its id. Writers, ``pin``, ``verify`` and ``load`` all ask here.
"""

from __future__ import annotations

REGISTRY_NAME = "registry.json"
SNAPSHOT_NAME = "registry.sigstore.json"  # whole-folder signature (OpenSSF Model Signing v1.0)
TRUST_DIR = "trust"


def basename(onnx_rel: str) -> str:
    return onnx_rel[: -len(".onnx")] if onnx_rel.endswith(".onnx") else onnx_rel


def int8_rel(onnx_rel: str) -> str:
    return basename(onnx_rel) + ".int8.onnx"


def sidecar_rel(onnx_rel: str) -> str:
    return basename(onnx_rel) + ".json"


def card_rel(entry_id: str) -> str:
    return f"{entry_id}.md"


def calibration_rel(onnx_rel: str) -> str:
    return basename(onnx_rel) + ".int8.calib.npy"


def inputs_rel(onnx_rel: str) -> str:
    """A pinned gate input set (``.npz``, one array per model input)."""
    return basename(onnx_rel) + ".gate-inputs.npz"


def bundle_rel(onnx_rel: str) -> str:
    """VMAFx naming: ``<onnx>.sigstore.json`` next to the model."""
    return f"{onnx_rel}.sigstore.json"
