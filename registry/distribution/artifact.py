"""What a pushed entry looks like in an OCI registry (ModelPack manifest, config, signature referrer).

* **model manifest** (OCI image manifest v1.1, ``artifactType`` ModelPack): a ModelPack
  config blob that also carries the entry's registry row (``tinyreg.row``), and one
  uncompressed layer per file the entry loads, its digest the pinned sha256, its path in
  ``org.cncf.model.filepath``.
* **signature referrer** (``subject`` = the model manifest, ``artifactType`` Sigstore
  bundle v0.3): layer 1 the entry's bundle; layers 2 and 3 the maintainer's
  ``registry.json`` and its folder snapshot ``registry.sigstore.json``, which prove the
  signed snapshot version and expiry the entry was released under (rollback and freeze
  checks on pull). Found through the referrers API, else the OCI tag-schema fallback
  (an image index tagged ``sha256-<hex of the model manifest digest>``).
"""

from __future__ import annotations

from typing import Any

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MODEL_ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
MODEL_CONFIG = "application/vnd.cncf.model.config.v1+json"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
REGISTRY_DOC_TYPE = "application/vnd.tinyreg.registry.v2+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # b"{}"
FILEPATH = "org.cncf.model.filepath"
ROLE = "dev.tinyreg.role"  # on referrer layers: entry-bundle | registry | snapshot
ENTRY = "dev.tinyreg.entry"

LAYER_TYPES = {
    "onnx": "application/vnd.cncf.model.weight.v1.raw",
    "int8": "application/vnd.cncf.model.weight.v1.raw",
    "external_data": "application/vnd.cncf.model.weight.v1.raw",
    "int8_external_data": "application/vnd.cncf.model.weight.v1.raw",
    "sidecar": "application/vnd.cncf.model.weight.config.v1.raw",
    "calibration": "application/vnd.cncf.model.dataset.v1.raw",
    "gate_inputs": "application/vnd.cncf.model.dataset.v1.raw",
}
DEFAULT_LAYER_TYPE = "application/vnd.cncf.model.weight.v1.raw"

# caps on what a pull reads before anything is verified
MAX_MANIFEST = 4 * 1024 * 1024
MAX_CONFIG = 4 * 1024 * 1024
MAX_BUNDLE = 1024 * 1024
MAX_REGISTRY_DOC = 16 * 1024 * 1024
MAX_REFERRERS = 16  # candidate signature manifests tried per pull
MAX_LAYERS = 256


def descriptor(media_type: str, digest: str, size: int, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
    if annotations:
        d["annotations"] = annotations
    return d


def model_config(row: dict[str, Any], layer_digests: list[str]) -> dict[str, Any]:
    lic = row.get("license")
    return {
        "descriptor": {
            "name": str(row.get("id")),
            "family": str(row.get("family", "")),
            "description": str(row.get("description", "")),
            **({"licenses": [lic]} if isinstance(lic, str) else {}),
        },
        "config": {"format": "onnx"},
        "modelfs": {"type": "layers", "diffIds": layer_digests},
        "tinyreg": {"row": row},
    }


def model_manifest(config: dict[str, Any], layers: list[dict[str, Any]], entry_id: str) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": MODEL_ARTIFACT,
        "config": config,
        "layers": layers,
        "annotations": {"org.opencontainers.image.title": entry_id, ENTRY: entry_id},
    }


def signature_manifest(subject: dict[str, Any], layers: list[dict[str, Any]], entry_id: str) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": BUNDLE_TYPE,
        "config": descriptor(EMPTY_TYPE, EMPTY_DIGEST, 2),
        "layers": layers,
        "subject": subject,
        "annotations": {ENTRY: entry_id},
    }


def fallback_tag(digest: str) -> str:
    """The OCI tag-schema fallback tag of a subject: ``sha256-<hex>``."""
    alg, _, hexd = digest.partition(":")
    return f"{alg}-{hexd}"
