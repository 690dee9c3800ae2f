"""``tinyreg push ID oci://HOST/REPO[:TAG]``: publish one verified entry as a ModelPack artifact with its signature."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.distribution import artifact as art
from registry.distribution.oci import DEFAULT_TIMEOUT_S, Ref, Transport, TransportError, dumps
from registry.errors import IntegrityError, SignatureError, UsageError

if TYPE_CHECKING:
    from registry.signing.policy import TrustPolicy


@dataclass
class PushResult:
    ref: str  # REF@sha256:<digest>
    digest: str
    entry: str
    signed: bool
    uploaded: list[str] = field(default_factory=list)  # digests of blobs this push sent
    manifest_written: bool = False
    snapshot_version: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "digest": self.digest, "entry": self.entry, "signed": self.signed,
                "uploaded": self.uploaded, "manifest_written": self.manifest_written,
                "snapshot_version": self.snapshot_version, "changed": bool(self.uploaded or self.manifest_written)}


@dataclass
class _Blob:
    digest: str
    size: int
    data: bytes | None = None  # small documents in memory
    path: Path | None = None  # files streamed from disk


def _sha(data: bytes) -> str:
    from registry._internal.hashing import sha256_bytes

    return "sha256:" + sha256_bytes(data).sha256


def push(
    entry_id: str,
    ref: str,
    *,
    registry: str | os.PathLike[str] | None = None,
    unsigned: bool = False,
    trust: str | os.PathLike[str] | TrustPolicy | None = None,
    plain_http: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: Callable[[int], None] | None = None,
) -> PushResult:
    """Push ``entry_id`` to ``ref``; refuses an entry whose files, signature or snapshot do not verify.

    ``unsigned``: allow an entry that carries no signature (it is pushed without a signature
    referrer; a consumer then needs ``unverified`` to pull it). A signed entry is always
    pushed with its signature. Pushing the same entry twice writes nothing the second time.

    The signature and the folder snapshot must verify under ``trust`` (a trust policy, as
    consumers use; None: ``$TINYREG_TRUST``, else the registry's own signing block).
    """
    from registry._internal.hashing import check_pinned_file, read_file
    from registry._internal.paths import confine
    from registry.signing.statement import used_files
    from registry.signing.verify import signed_files
    from registry.store.document import Registry, find_registry, parse_registry_bytes, reading
    from registry.store.layout import REGISTRY_NAME, SNAPSHOT_NAME

    r = Ref.parse(ref, default_tag=entry_id)
    if r.digest:
        raise UsageError(f"{ref}: push to a tag, not a digest (the digest is what the push prints)")
    t = Transport(r.host, plain_http=plain_http, timeout=timeout)  # bad options fail before any work
    path = find_registry(registry)
    with reading(path):
        raw = read_file(path)
        reg = Registry(path, parse_registry_bytes(raw, str(path)))
        entry = reg.get(entry_id)
        if reg.is_legacy:
            raise UsageError(f"a schema_version {reg.schema_version} registry cannot be pushed (every file must be pinned)")
        pins = signed_files(entry)
        digests: dict[str, str] = {}
        blobs: list[tuple[dict[str, Any], _Blob]] = []
        for f in pins:
            rel, sha, size = str(f["path"]), str(f.get("sha256")), f.get("size")
            if not isinstance(size, int):
                raise UsageError(f"entry '{entry_id}': {rel} has no pinned size; run 'tinyreg pin {entry_id}'")
            file_path = confine(reg.root, rel, what="file")
            try:
                actual = os.stat(file_path).st_size
            except OSError as exc:
                raise IntegrityError(f"{rel}: pinned file is missing or unreadable ({exc.strerror})") from exc
            if actual != size:
                raise IntegrityError(f"{rel}: size {actual} != pinned {size}; run 'tinyreg pin {entry_id}'")
            digests[rel] = sha
            layer = art.descriptor(art.LAYER_TYPES.get(str(f.get("role")), art.DEFAULT_LAYER_TYPE), f"sha256:{sha}", size,
                                   {art.FILEPATH: rel})
            blobs.append((layer, _Blob(f"sha256:{sha}", size, path=file_path)))
        signed = isinstance(entry.get("sigstore_bundle"), str)
        if not signed:  # a signed entry's files are hashed and derived from its graphs by the signature check below
            for rel, sha in digests.items():
                check_pinned_file(confine(reg.root, rel, what="file"), sha)
            _same_files(entry_id, {p: sha for p, (_, sha) in used_files(reg, entry).items()}, digests)
        sig_blobs: list[tuple[dict[str, Any], _Blob]] = []
        version = None
        if signed:
            from registry.signing.policy import policy_from_registry, resolve_trust
            from registry.signing.snapshot import verify_snapshot
            from registry.signing.verify import verify_entry_bundle

            policy = resolve_trust(trust) or policy_from_registry(reg)
            rel = str(entry["sigstore_bundle"])
            bundle = read_file(confine(reg.root, rel, what="sigstore_bundle"), rel)
            # hashes every file it loads, derives the list from the graphs, and compares with what was signed
            subjects = verify_entry_bundle(reg, entry, bundle, rel, policy=policy, digests=digests)
            _same_files(entry_id, subjects, digests)
            snap = read_file(confine(reg.root, SNAPSHOT_NAME, what="snapshot"), SNAPSHOT_NAME)
            only = {**digests, rel: _sha(bundle)[7:], REGISTRY_NAME: _sha(raw)[7:]}
            try:
                version = verify_snapshot(reg.root, policy, doc=reg.doc, only=only, bundle=snap)  # the bytes pushed
            except SignatureError as exc:
                raise SignatureError(f"the registry's snapshot does not cover entry '{entry_id}' as it is "
                                     f"({exc.diagnostics()}); run 'tinyreg sign'") from exc
            for role, data, mt in (("entry-bundle", bundle, art.BUNDLE_TYPE), ("registry", raw, art.REGISTRY_DOC_TYPE),
                                   ("snapshot", snap, art.BUNDLE_TYPE)):
                sig_blobs.append((art.descriptor(mt, _sha(data), len(data), {art.ROLE: role}), _Blob(_sha(data), len(data), data)))
        elif not unsigned:
            raise UsageError(f"entry '{entry_id}' is not signed; consumers could not verify it", hint="unsigned")
        config_doc = art.model_config(dict(entry), [layer["digest"] for layer, _ in blobs])
        config = dumps(config_doc)
        manifest = dumps(art.model_manifest(art.descriptor(art.MODEL_CONFIG, _sha(config), len(config)),
                                            [layer for layer, _ in blobs], entry_id))
        digest = _sha(manifest)

        t.ping()
        result = PushResult(r.with_digest(digest), digest, entry_id, signed, snapshot_version=version)
        for _layer, b in [*blobs, (None, _Blob(_sha(config), len(config), config))]:
            _upload(t, r.repo, b, result, progress)
        result.manifest_written = _put_if_changed(t, r.repo, str(r.tag), manifest) is not None
        if signed:
            empty = b"{}"
            _upload(t, r.repo, _Blob(art.EMPTY_DIGEST, 2, empty), result, progress)
            for _layer, b in sig_blobs:
                _upload(t, r.repo, b, result, progress)
            subject = art.descriptor(art.MANIFEST_TYPE, digest, len(manifest))
            sig = dumps(art.signature_manifest(subject, [layer for layer, _ in sig_blobs], entry_id))
            sig_digest = _sha(sig)
            headers = _put_if_changed(t, r.repo, sig_digest, sig)
            if headers is not None:
                result.manifest_written = True
            if headers is None or "oci-subject" not in headers:
                desc = {**art.descriptor(art.MANIFEST_TYPE, sig_digest, len(sig), {art.ENTRY: entry_id}),
                        "artifactType": art.BUNDLE_TYPE}
                if _add_to_fallback_index(t, r.repo, art.fallback_tag(digest), desc):
                    result.manifest_written = True
    return result


def _same_files(entry_id: str, loaded: Mapping[str, str], pinned: Mapping[str, str]) -> None:
    """The row's pins must be exactly the files the entry loads (a pull checks the layers against both)."""
    if loaded != dict(pinned):
        differ = sorted(set(loaded) ^ set(pinned)) or sorted(p for p in loaded if loaded[p] != pinned.get(p))
        raise IntegrityError(f"entry '{entry_id}': its pinned files differ from the files it loads or were signed "
                             f"({', '.join(differ)}); run 'tinyreg pin {entry_id}' and 'tinyreg sign'")


def _upload(t: Transport, repo: str, b: _Blob, result: PushResult, progress: Callable[[int], None] | None) -> None:
    if t.blob_exists(repo, b.digest):
        return
    if b.data is not None:
        t.upload_blob(repo, b.digest, b.size, b.data)
    else:
        assert b.path is not None
        with open(b.path, "rb") as fh:
            t.upload_blob(repo, b.digest, b.size, fh)
    result.uploaded.append(b.digest)
    if progress:
        progress(b.size)


def _put_if_changed(t: Transport, repo: str, reference: str, data: bytes) -> Mapping[str, str] | None:
    """The PUT's response headers, or None when the registry already holds exactly ``data`` there."""
    status, have, _ = t.get_document(repo, f"manifests/{reference}", art.MANIFEST_TYPE, art.MAX_MANIFEST, push=True)
    if status == 200 and have == data:
        return None
    return t.put_manifest(repo, reference, data, art.MANIFEST_TYPE)


def _add_to_fallback_index(t: Transport, repo: str, tag: str, desc: dict[str, Any]) -> bool:
    from registry._internal.jsonio import loads_json

    status, data, _ = t.get_document(repo, f"manifests/{tag}", art.INDEX_TYPE, art.MAX_MANIFEST, push=True)
    if status == 200:
        doc = loads_json(data, f"{t.host}/{repo}:{tag}")
        manifests = doc.get("manifests") if isinstance(doc, dict) else None
        if not isinstance(manifests, list):
            raise TransportError(f"{t.host}/{repo}:{tag} is not an OCI image index; refusing to overwrite it")
        if any(isinstance(m, dict) and m.get("digest") == desc["digest"] for m in manifests):
            return False
        manifests.append(desc)
    else:
        doc = {"schemaVersion": 2, "mediaType": art.INDEX_TYPE, "manifests": [desc]}
    t.put_manifest(repo, tag, dumps(doc), art.INDEX_TYPE)
    return True
