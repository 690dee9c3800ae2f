"""What a hostile registry operator does by hand: read, re-tag, re-attach and forge OCI documents."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from registry.distribution import artifact as art
from registry.distribution.oci import Ref, Transport, dumps
from registry.distribution.puller import _referrers, _signature_parts


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def transport(host: str) -> Transport:
    return Transport(host, plain_http=True, timeout=5)


def manifest(host: str, repo: str, reference: str) -> tuple[bytes, dict[str, Any]]:
    t = transport(host)
    _, data, _ = t.get_document(repo, f"manifests/{reference}", art.MANIFEST_TYPE)
    return data, json.loads(data)


def upload(host: str, repo: str, data: bytes) -> str:
    t = transport(host)
    d = sha(data)
    if not t.blob_exists(repo, d):
        t.upload_blob(repo, d, len(data), data)
    return d


def put_manifest(host: str, repo: str, reference: str, doc: dict[str, Any] | bytes) -> tuple[bytes, str]:
    data = doc if isinstance(doc, bytes) else dumps(doc)
    transport(host).put_manifest(repo, reference, data, art.MANIFEST_TYPE)
    return data, sha(data)


def signature_parts(host: str, repo: str, digest: str) -> list[dict[str, bytes]]:
    """The parts (role -> bytes) of every signature attached to ``digest``."""
    t = transport(host)
    r = Ref(host, repo, tag="x")
    return [_signature_parts(t, r, d, digest) for d in _referrers(t, r, digest)]


def attach(host: str, repo: str, subject: bytes, parts: list[tuple[str, bytes]], entry: str = "dists_vgg16") -> str:
    """Attach a signature manifest with ``parts`` (role, bytes) to ``subject`` (manifest bytes), as the operator can."""
    from registry.distribution.pusher import _add_to_fallback_index

    t = transport(host)
    upload(host, repo, b"{}")
    layers = []
    for role, data in parts:
        layers.append(art.descriptor(art.REGISTRY_DOC_TYPE if role == "registry" else art.BUNDLE_TYPE, upload(host, repo, data),
                                     len(data), {art.ROLE: role}))
    sig = art.signature_manifest(art.descriptor(art.MANIFEST_TYPE, sha(subject), len(subject)), layers, entry)
    data, d = put_manifest(host, repo, sha(dumps(sig)), sig)
    desc = {**art.descriptor(art.MANIFEST_TYPE, d, len(data)), "artifactType": art.BUNDLE_TYPE}
    _add_to_fallback_index(t, repo, art.fallback_tag(sha(subject)), desc)
    return d


def reattach_original(host: str, repo: str, original_digest: str, new_subject: bytes) -> None:
    """Attach the genuine signature of ``original_digest`` to a forged manifest."""
    parts = signature_parts(host, repo, original_digest)[0]
    attach(host, repo, new_subject, [(k, parts[k]) for k in ("entry-bundle", "registry", "snapshot")])
