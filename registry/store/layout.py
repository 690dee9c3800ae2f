"""Every file name the registry derives, in one place.

An entry names its fp32 model (``onnx``); everything else an entry owns is found
from that name or from its id. Writers, ``pin``, ``verify`` and ``load`` all ask here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from registry.store.types import declares_int8

REGISTRY_NAME = "registry.json"
SNAPSHOT_NAME = "registry.sigstore.json"  # whole-folder signature (OpenSSF Model Signing v1.0)
TRUST_DIR = "trust"
STAGING_DIR = ".tinyreg-update"  # exists only while an update is being committed (store/document.py)


def basename(onnx_rel: str) -> str:
    return onnx_rel[: -len(".onnx")] if onnx_rel.endswith(".onnx") else onnx_rel


def int8_rel(onnx_rel: str) -> str:
    return basename(onnx_rel) + ".int8.onnx"


def fp16_rel(onnx_rel: str) -> str:
    return basename(onnx_rel) + ".fp16.onnx"


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


SCHEMA_NAME = "registry.schema.json"  # the schema file VMAFx keeps next to its registry
README_NAME = "README.md"
ROOT_FILES = (REGISTRY_NAME, SNAPSHOT_NAME, SCHEMA_NAME, README_NAME)


class _Doc(Protocol):
    @property
    def doc(self) -> dict[str, Any]: ...

    @property
    def entries(self) -> Sequence[Mapping[str, Any]]: ...


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def entry_files(entry: Mapping[str, Any], *, reserved: bool = False) -> set[str]:
    """The files one entry refers to (``reserved``: also every name derived for it, used or not).

    Referred to: its model, sidecar and card, the int8 and fp16 siblings when it declares them,
    its calibration set and signature bundle when it names them, and every pinned path.
    Reserved names are what no other entry may use: the int8, calibration, gate-input
    fp16, and bundle names an entry would get as soon as a writer makes them.
    """
    out: set[str] = set()
    eid, onnx = _str(entry.get("id")), _str(entry.get("onnx"))
    if eid is not None:
        out.add(card_rel(eid))
    if onnx is not None:
        out |= {onnx, sidecar_rel(onnx)}
        if reserved or declares_int8(entry):
            out.add(int8_rel(onnx))
        if reserved or isinstance(entry.get("fp16_sha256"), str):
            out.add(fp16_rel(onnx))
        if reserved:
            out |= {calibration_rel(onnx), inputs_rel(onnx), bundle_rel(onnx)}
    for key in ("quant_calibration_set", "sigstore_bundle"):
        if (v := _str(entry.get(key))) is not None:
            out.add(v)
    files = entry.get("files")
    for f in files if isinstance(files, list) else []:
        if isinstance(f, dict) and (p := _str(f.get("path"))) is not None:
            out.add(p)
    return out


def trust_files(doc: Mapping[str, Any]) -> set[str]:
    """Files of the trust folder that the signing block refers to."""
    signing = doc.get("signing")
    if not isinstance(signing, dict):
        return set()
    return {v for v in signing.values() if isinstance(v, str) and v.startswith(f"{TRUST_DIR}/")}


def expected_files(reg: _Doc) -> set[str]:
    """Every file the registry expects in its folder; anything else there is unlisted.

    (A legacy registry's unpinned external data is known only from its graphs; ``verify``
    adds what the graphs name.)
    """
    out = set(ROOT_FILES) | trust_files(reg.doc)
    for e in reg.entries:
        out |= entry_files(e)
    return out
