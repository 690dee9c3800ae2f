"""``tinyreg pull oci://HOST/REPO[:TAG|@sha256:...]``: verify first, then fetch, then write one transaction.

Order (docs/distribution.md):

1. the manifest: bytes capped and hashed (a pinned digest must match), strict JSON, ModelPack shape;
2. the signature referrers (referrers API, else the ``sha256-<hex>`` tag fallback), each
   capped and hashed; the entry bundle verified under the consumer's trust policy, the
   maintainer's folder snapshot verified under the same policy over the maintainer's
   ``registry.json``, the entry's files and its bundle (version, expiry); the highest
   verified snapshot version wins; an older one than this folder already holds is refused;
3. the signed file list, the signed row and the manifest's layers must be equal (paths by
   the schema's relative-path rule, digests, sizes); the config's row equals the signed one;
4. only then the blobs: each streamed into the content-addressed cache, capped at its
   declared size and hashed as it arrives (a valid cached copy is re-hashed and used);
5. one transaction into the destination, each file streamed from the cache and hashed again on
   the way; the pull is recorded (``state.py``).

Any failure leaves the destination untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from registry.distribution import artifact as art
from registry.distribution.oci import DEFAULT_TIMEOUT_S, Ref, Transport, TransportError
from registry.errors import Error, InputError, IntegrityError, SignatureError, UsageError

if TYPE_CHECKING:
    from registry.signing.policy import TrustPolicy
    from registry.store.document import Entry

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_LANDABLE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*")
MAX_BLOB = 64 * 1024 * 1024 * 1024  # no single file of a tiny model is anywhere near this
METADATA_BUDGET = 10  # x timeout: manifest, signature referrers and config together


@dataclass
class PullResult:
    ref: str
    digest: str
    entry: str
    registry: str
    verified: bool
    changed: bool
    snapshot_version: int | None
    files: int
    bytes: int
    from_cache: int  # blobs served from the verified local cache

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Evidence:
    bundle: bytes | None
    registry_doc: dict[str, Any] | None
    row: dict[str, Any]
    subjects: dict[str, str]  # path -> sha256 (signed)
    version: int | None
    expires: str | None
    source: str


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _loads(data: bytes, source: str) -> Any:
    from registry._internal.jsonio import loads_json

    return loads_json(data, source)


def _dest_folder(registry: str | os.PathLike[str] | None) -> Path:
    from registry.errors import RegistryNotFound
    from registry.store.document import find_registry

    if registry is None:
        return find_registry(None).parent
    p = Path(registry).expanduser()
    try:  # an existing registry is found as everywhere else (DIR/registry.json, else DIR/model/tiny/registry.json)
        return find_registry(p).parent
    except RegistryNotFound:  # none yet: DIR (or the folder of DIR/registry.json) becomes one
        return p.parent if p.name == "registry.json" else p


def pull(
    ref: str,
    *,
    registry: str | os.PathLike[str] | None = None,
    trust: str | os.PathLike[str] | TrustPolicy | None = None,
    unverified: bool = False,
    entry: str | None = None,
    plain_http: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    cache_dir: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> PullResult:
    """Pull one entry into the registry folder ``registry`` (created when missing) after verifying it.

    ``trust``: the consumer's trust policy (None: ``$TINYREG_TRUST``). Without one the pull is
    refused unless ``unverified`` (then nothing is checked but digests and sizes, and the
    entry will not pass ``verify --trust``). ``entry``: the entry id expected (a tag moved to
    another entry of the same signer is then refused). Nothing is written to ``registry`` on
    any failure.
    """
    from registry.distribution.cache import BlobCache
    from registry.signing.policy import resolve_trust

    r = Ref.parse(ref)
    policy = resolve_trust(trust)
    if policy is None and not unverified:
        raise UsageError("a pull needs a trust policy (who may sign the entry); an unchecked pull must be asked for",
                         hint="trust_or_unverified")
    if policy is not None and unverified:
        raise UsageError("a trust policy and an unverified pull contradict each other; give one", hint="trust_or_unverified")
    dest = _dest_folder(registry)
    _check_dest(dest)
    if policy is not None:
        from registry.signing.snapshot import require_state_dir

        require_state_dir()
    t = Transport(r.host, plain_http=plain_http, timeout=timeout)
    cache = BlobCache(Path(cache_dir) / "oci" if cache_dir is not None else None)

    # 1.-3. manifest, signatures, config: small documents, under one overall deadline (many slow
    # referrers cannot hold the pull for each one's own deadline in turn)
    t.until = time.monotonic() + METADATA_BUDGET * timeout
    # 1. the manifest, hashed as received
    status, manifest_bytes, _ = t.get_document(r.repo, f"manifests/{r.reference}", art.MANIFEST_TYPE, art.MAX_MANIFEST)
    if status == 404:
        raise InputError(f"{r}: no such manifest")
    digest = _sha(manifest_bytes)
    if r.digest and digest != r.digest:
        raise IntegrityError(f"{r}: the registry sent a manifest with digest {digest[:23]}..., not the pinned one; nothing written")
    manifest = _model_manifest(manifest_bytes, str(r))
    layers = _layers(manifest, str(r))

    # 2. the signature, verified before any blob is fetched
    config: Any = None
    if policy is not None:
        ev = _verified_evidence(t, r, digest, policy, now)
        from registry.distribution.state import check_rollback

        assert ev.version is not None
        check_rollback(dest, str(ev.row["id"]), ev.version)
    else:
        config = _model_config(t, r, manifest)  # where the unsigned row comes from: fetched once, used below too
        ev = _unverified_evidence(t, r, digest, config)
    eid = str(ev.row.get("id"))
    if entry is not None and eid != entry:
        raise SignatureError(f"{r} holds entry '{eid}', not the expected '{entry}' (a tag moved?); nothing written; "
                             f"pin the digest ({r.with_digest(digest)}) to take what it holds")

    # 3. signed files == signed row pins == manifest layers
    _match(ev, layers, manifest, str(r))
    if config is None:
        config = _model_config(t, r, manifest)
    if _config_row(config) != ev.row:
        raise IntegrityError(f"{r}: the model config's row is not the signed row of '{eid}'; nothing written")

    # 4. the blobs, streamed and hashed into the cache (each its own deadline by size)
    t.until = None
    paths: dict[str, Path] = {}
    from_cache = 0
    total = 0
    for rel, (d, size) in sorted(layers.items()):
        paths[rel], hit = cache.fetch(t, r.repo, d, size, progress=progress)
        from_cache += hit
        total += size

    # 5. one transaction
    changed = _land(dest, ev, layers, paths, cache)
    if policy is not None:
        from registry.distribution.state import record

        assert ev.bundle is not None
        record(dest, eid, {"snapshot_version": ev.version, "expires": ev.expires, "bundle_sha256": _sha(ev.bundle)[7:],
                           "source": r.with_digest(digest), "pulled": _now_text()})
    return PullResult(r.with_digest(digest), digest, eid, str(dest / "registry.json"), policy is not None, changed,
                      ev.version, len(layers), total, from_cache)


def _now_text() -> str:
    from registry.signing.snapshot import format_time, now_utc

    return format_time(now_utc())


def _check_dest(dest: Path) -> None:
    from registry.store.layout import REGISTRY_NAME, SNAPSHOT_NAME

    if os.path.lexists(dest / SNAPSHOT_NAME):
        raise UsageError(f"{dest} carries a maintainer's folder snapshot ({SNAPSHOT_NAME}); a pulled entry would break it. "
                         "Pull into a folder of pulled entries (an empty or new one)", hint="registry")
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} is not a folder", hint="registry")
    if dest.is_dir() and not (dest / REGISTRY_NAME).exists() and any(dest.iterdir()):
        raise UsageError(f"{dest} holds files but no registry.json; pull into an empty or new folder", hint="registry")


def _model_manifest(data: bytes, source: str) -> dict[str, Any]:
    doc = _loads(data, f"{source} manifest")
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise InputError(f"{source}: not an OCI image manifest")
    if doc.get("mediaType") not in (None, art.MANIFEST_TYPE):
        raise InputError(f"{source}: media type {str(doc.get('mediaType'))[:80]!r} is not an OCI image manifest")
    if doc.get("artifactType") != art.MODEL_ARTIFACT:
        raise InputError(f"{source}: not a ModelPack model artifact (artifactType {str(doc.get('artifactType'))[:80]!r})")
    cfg = doc.get("config")
    if not isinstance(cfg, dict) or cfg.get("mediaType") != art.MODEL_CONFIG:
        raise InputError(f"{source}: the manifest has no ModelPack config")
    _desc(cfg, source, art.MAX_CONFIG)
    return doc


def _desc(d: Any, source: str, cap: int = MAX_BLOB) -> tuple[str, int]:
    if not isinstance(d, dict):
        raise InputError(f"{source}: a descriptor is not an object")
    digest, size = d.get("digest"), d.get("size")
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InputError(f"{source}: descriptor digest {str(digest)[:80]!r} is not sha256:<hex>")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or size > cap:
        raise InputError(f"{source}: descriptor size {str(size)[:30]} is not a size up to {cap} bytes")
    return digest, size


def _layers(manifest: Mapping[str, Any], source: str) -> dict[str, tuple[str, int]]:
    """path -> (digest, size) of the manifest's layers; paths by the schema's relative-path rule."""
    raw = manifest.get("layers")
    if not isinstance(raw, list) or not raw or len(raw) > art.MAX_LAYERS:
        raise InputError(f"{source}: the manifest needs 1 to {art.MAX_LAYERS} layers")
    out: dict[str, tuple[str, int]] = {}
    for layer in raw:
        digest, size = _desc(layer, source)
        ann = layer.get("annotations")
        rel = ann.get(art.FILEPATH) if isinstance(ann, dict) else None
        if not isinstance(rel, str) or not _LANDABLE.fullmatch(rel) or ".." in rel.split("/") or len(rel) > 1024:
            raise IntegrityError(f"{source}: layer path {str(rel)[:120]!r} is not a relative registry path "
                                 "(no '..', no hidden component); nothing written")
        if rel in out:
            raise IntegrityError(f"{source}: two layers claim {rel}; nothing written")
        out[rel] = (digest, size)
    return out


def _small_blob(t: Transport, repo: str, desc: Mapping[str, Any], cap: int, what: str) -> bytes:
    """A small blob in memory: capped at its declared size (itself capped) and hashed."""
    from registry.distribution.oci import read_capped

    digest, size = _desc(desc, what, cap)
    resp = t.open_blob(repo, digest)
    try:
        data = read_capped(resp, size, what=f"{what} {digest[:19]}", deadline=t.deadline(size))
    finally:
        resp.close()
    if len(data) != size or _sha(data) != digest:
        raise IntegrityError(f"{what} {digest[:19]}...: the registry sent other bytes than its digest; nothing written")
    return data


def _referrers(t: Transport, r: Ref, digest: str) -> list[dict[str, Any]]:
    """Candidate signature manifests for ``digest``: referrers API, else the tag-schema fallback index."""
    status, data, _ = t.get_document(r.repo, f"referrers/{digest}?artifactType={art.BUNDLE_TYPE}", art.INDEX_TYPE,
                                     art.MAX_MANIFEST)
    if status == 404:
        status, data, _ = t.get_document(r.repo, f"manifests/{art.fallback_tag(digest)}", art.INDEX_TYPE, art.MAX_MANIFEST)
    if status == 404:
        return []
    index = _loads(data, f"{r} referrers")
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise InputError(f"{r}: the referrers answer is not an OCI image index")
    out = [m for m in manifests if isinstance(m, dict) and m.get("artifactType") == art.BUNDLE_TYPE]
    return out[: art.MAX_REFERRERS]


def _signature_parts(t: Transport, r: Ref, desc: Mapping[str, Any], subject: str) -> dict[str, bytes]:
    """role -> bytes of one signature referrer (manifest hashed, each blob capped and hashed)."""
    sig_digest, _ = _desc(desc, f"{r} referrer", art.MAX_MANIFEST)
    _, data, _ = t.get_document(r.repo, f"manifests/{sig_digest}", art.MANIFEST_TYPE, art.MAX_MANIFEST)
    if _sha(data) != sig_digest:
        raise IntegrityError(f"{r}: signature manifest {sig_digest[:19]}... does not hash to its digest")
    doc = _loads(data, f"{r} signature manifest")
    if not isinstance(doc, dict) or doc.get("artifactType") != art.BUNDLE_TYPE:
        raise InputError(f"{r}: referrer {sig_digest[:19]}... is not a Sigstore bundle artifact")
    subj = doc.get("subject")
    if not isinstance(subj, dict) or subj.get("digest") != subject:
        raise SignatureError(f"{r}: referrer {sig_digest[:19]}... is attached to another manifest")
    parts: dict[str, bytes] = {}
    caps = {"entry-bundle": art.MAX_BUNDLE, "registry": art.MAX_REGISTRY_DOC, "snapshot": art.MAX_BUNDLE}
    layers = doc.get("layers")
    for layer in layers if isinstance(layers, list) else []:
        ann = layer.get("annotations") if isinstance(layer, dict) else None
        role = ann.get(art.ROLE) if isinstance(ann, dict) else None
        if role in caps and role not in parts:
            parts[str(role)] = _small_blob(t, r.repo, layer, caps[str(role)], f"{r} {role}")
    return parts


def _verified_evidence(t: Transport, r: Ref, digest: str, policy: TrustPolicy, now: datetime | None) -> _Evidence:
    candidates = _referrers(t, r, digest)
    if not candidates:
        raise SignatureError(f"{r}: no signature is attached to manifest {digest[:23]}... (an unsigned entry); nothing written")
    best: _Evidence | None = None
    errors: list[str] = []
    for desc in candidates:
        try:
            parts = _signature_parts(t, r, desc, digest)
            ev = _verify_parts(parts, policy, str(r), now)
        except Error as exc:
            errors.append(exc.diagnostics())
            continue
        if best is None or (ev.version or 0) > (best.version or 0):
            best = ev
    if best is None:
        raise SignatureError(f"{r}: no attached signature verifies under the trust policy ({errors[0]}); nothing written")
    return best


def _verify_parts(parts: Mapping[str, bytes], policy: TrustPolicy, source: str, now: datetime | None) -> _Evidence:
    """The entry bundle and the maintainer's snapshot, verified under ``policy`` before anything else is fetched."""
    from registry.signing.snapshot import snapshot_field, verify_snapshot
    from registry.signing.statement import INTOTO_PAYLOAD_TYPE, PREDICATE_TYPE, signed_row
    from registry.store.layout import REGISTRY_NAME

    missing = sorted({"entry-bundle", "registry", "snapshot"} - set(parts))
    if missing:
        raise SignatureError(f"{source}: the signature referrer lacks {', '.join(missing)}")
    bundle = parts["entry-bundle"]
    _loads(bundle, f"{source} entry bundle")  # strict reader first (depth, duplicates)
    ptype, payload = policy.verify_dsse(bundle, f"{source} entry bundle")
    if ptype != INTOTO_PAYLOAD_TYPE:
        raise SignatureError(f"{source}: the bundle's payload is not an in-toto statement")
    try:
        st = _loads(payload, f"{source} signed statement")
        pred = st["predicate"]
        subjects = {str(s["name"]): str(s["digest"]["sha256"]) for s in st["subject"]}
        eid, signed = pred["entry"], pred["row"]
        ok = st.get("predicateType") == PREDICATE_TYPE and isinstance(eid, str) and isinstance(signed, dict)
    except (KeyError, TypeError, AttributeError, InputError) as exc:
        raise SignatureError(f"{source}: the signed statement is malformed") from exc
    if not ok:
        raise SignatureError(f"{source}: the signed statement is not a tinyreg registry-entry statement")
    doc = _loads(parts["registry"], f"{source} maintainer registry.json")
    models = doc.get("models") if isinstance(doc, dict) else None
    rows = [m for m in models if isinstance(m, dict) and m.get("id") == eid] if isinstance(models, list) else []
    if len(rows) != 1:
        raise SignatureError(f"{source}: the maintainer's registry.json does not hold entry '{eid}' once")
    row = rows[0]
    if signed_row(row) != signed:
        raise SignatureError(f"{source}: the maintainer's row of '{eid}' is not the signed one")
    rel = row.get("sigstore_bundle")
    pin = [f for f in row.get("files") or [] if isinstance(f, dict) and f.get("path") == rel]
    if not isinstance(rel, str) or len(pin) != 1 or pin[0].get("sha256") != _sha(bundle)[7:]:
        raise SignatureError(f"{source}: the bundle is not the one the maintainer's row of '{eid}' pins")
    only = {**subjects, rel: _sha(bundle)[7:], REGISTRY_NAME: _sha(parts["registry"])[7:]}
    # the maintainer's folder is not here: only those digests are checked against the snapshot as received
    version = verify_snapshot(Path(), policy, doc=doc, only=only, now=now, bundle=parts["snapshot"])
    field = snapshot_field(doc, REGISTRY_NAME)
    assert field is not None
    from registry.signing.snapshot import format_time

    return _Evidence(bundle, doc, row, subjects, version, format_time(field[1]), source)


def _model_config(t: Transport, r: Ref, manifest: Mapping[str, Any]) -> Any:
    return _loads(_small_blob(t, r.repo, manifest["config"], art.MAX_CONFIG, "model config"), f"{r} model config")


def _config_row(config: Any) -> Any:
    """The registry row a model config carries (``tinyreg.row``), or None."""
    return config.get("tinyreg", {}).get("row") if isinstance(config, dict) and isinstance(config.get("tinyreg"), dict) else None


def _unverified_evidence(t: Transport, r: Ref, digest: str, config: Any) -> _Evidence:
    row = _config_row(config)
    if not isinstance(row, dict) or not isinstance(row.get("id"), str):
        raise InputError(f"{r}: the model config holds no tinyreg row")
    bundle = None
    if isinstance(row.get("sigstore_bundle"), str):
        for desc in _referrers(t, r, digest):
            with contextlib.suppress(Error):
                bundle = _signature_parts(t, r, desc, digest).get("entry-bundle")
            if bundle is not None:
                break
        if bundle is None:
            raise InputError(f"{r}: the row names a signature bundle the registry does not hold")
    from registry.signing.verify import signed_files

    subjects = {str(f["path"]): str(f.get("sha256")) for f in signed_files(row)}
    return _Evidence(bundle, None, row, subjects, None, None, str(r))


def _match(ev: _Evidence, layers: Mapping[str, tuple[str, int]], manifest: Mapping[str, Any], source: str) -> None:
    """The signed file list, the row's pins and the manifest's layers must be the same set, digests and sizes."""
    from registry.signing.verify import signed_files

    pins = {str(f.get("path")): f for f in signed_files(ev.row)}
    problems = []
    for name, have in (("signed", set(ev.subjects)), ("pinned", set(pins))):
        extra = sorted(set(layers) - have)
        missing = sorted(have - set(layers))
        if extra:
            problems.append(f"layers not {name}: {', '.join(extra)}")
        if missing:
            problems.append(f"{name} files with no layer: {', '.join(missing)}")
    for rel, (digest, size) in sorted(layers.items()):
        if rel in ev.subjects and ev.subjects[rel] != digest[7:]:
            problems.append(f"{rel}: layer digest differs from the signed one")
        pin = pins.get(rel)
        if pin is not None and (pin.get("sha256") != digest[7:] or pin.get("size") != size):
            problems.append(f"{rel}: layer digest or size ({size}) differs from the row's pin ({pin.get('size')})")
    if problems:
        raise IntegrityError(f"{source}: the manifest does not match the signed entry ({'; '.join(problems[:6])}); nothing written")


def _land(dest: Path, ev: _Evidence, layers: Mapping[str, tuple[str, int]], paths: Mapping[str, Path], cache: Any) -> bool:
    """Add or replace the entry in ``dest`` as one update, its files staged from the verified cache.

    The commit streams each file into place and hashes it again on the way (memory stays
    bounded whatever the model size; a file changed in between is refused, nothing written).
    The file list is the signed one: it is not derived again from the graphs here (that would
    parse every graph in memory); ``verify --trust`` and ``load`` derive it on the destination.
    """
    row = ev.row
    eid = str(row["id"])
    bundle_rel = row.get("sigstore_bundle")
    staging = cache.staging()
    try:
        files: dict[str, tuple[Path, str, int]] = {}
        small: dict[str, bytes] = {}
        for rel, (digest, size) in sorted(layers.items()):
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(paths[rel], target)
            except OSError:
                shutil.copyfile(paths[rel], target, follow_symlinks=False)
            files[rel] = (target, digest[7:], size)  # the commit hashes it again as it streams it into place
        if isinstance(bundle_rel, str):
            if ev.bundle is None:
                raise InputError(f"'{eid}' names a bundle the registry did not send")
            _landable(bundle_rel)
            small[bundle_rel] = ev.bundle  # staged from memory by the transaction
        return _commit(dest, eid, row, files, small)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _landable(rel: str) -> None:
    if not _LANDABLE.fullmatch(rel) or ".." in rel.split("/"):
        raise IntegrityError(f"{rel[:120]!r} is not a relative registry path; nothing written")


def _commit(dest: Path, eid: str, row: dict[str, Any], files: Mapping[str, tuple[Path, str, int]],
            small: Mapping[str, bytes]) -> bool:
    import copy

    from registry._internal.hashing import sha256_bytes
    from registry.store import schema
    from registry.store.card import write_card
    from registry.store.commit import commit, locked
    from registry.store.document import Registry, dumps_registry, file_collisions, new_registry_doc, transaction
    from registry.store.layout import REGISTRY_NAME

    def stage(reg: Registry) -> None:
        for rel, (src, sha, size) in files.items():
            reg.stage_file(rel, src, sha, size)
        for rel, data in small.items():
            reg.stage(rel, data)

    path = dest / REGISTRY_NAME
    if not path.exists():
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{dest}: cannot create the folder ({exc.strerror})") from exc
        with locked(dest, exclusive=True):
            if not path.exists():
                doc = new_registry_doc()
                doc["models"] = [copy.deepcopy(row)]
                schema.require_valid_registry(doc, str(path))
                clash = file_collisions(doc)
                if clash:
                    raise UsageError(f"entry '{clash[0][0]}': {clash[0][1]}; nothing written")
                reg = Registry(path, doc)
                stage(reg)
                write_card(reg, reg.get(eid))
                commit(dest, reg.staged, dumps_registry(doc), sources=reg.staged_files)
                return True
    with transaction(path) as reg:
        old = reg.find(eid)
        want = {rel: sha for rel, (_, sha, _) in files.items()} | {rel: sha256_bytes(d).sha256 for rel, d in small.items()}
        if old == row and all(reg.exists(rel) and reg.digest(rel).sha256 == sha for rel, sha in want.items()):
            return False
        models = reg.doc.setdefault("models", [])
        new = copy.deepcopy(row)
        if old is None:
            models.append(new)
        else:
            models[models.index(old)] = new
        stage(reg)
        write_card(reg, cast("Entry", new))  # the signed row; the transaction validates it against the schema before it lands
    return True


def cached_registry(ref: str, *, trust: str | os.PathLike[str] | TrustPolicy | None, now: datetime | None = None,
                    plain_http: bool = False) -> tuple[str, Path]:
    """(entry id, registry.json) of ``ref`` pulled and verified into the local cache (``registry.load("oci://...")``)."""
    from registry.distribution.cache import cache_root
    from registry.signing.policy import resolve_trust

    policy = resolve_trust(trust)
    if policy is None:
        raise UsageError("loading from an OCI registry needs a trust policy", hint="trust")
    r = Ref.parse(ref)
    if plain_http is False and r.host and _loopback_plain(r.host):
        plain_http = True
    key = hashlib.sha256(f"{r.host}/{r.repo}".encode()).hexdigest()[:24]
    from registry.distribution.cache import real_dir

    # each level created here and refused when it is a symlink (a shared cache must not send the pull elsewhere)
    dest = real_dir(real_dir(real_dir(cache_root() / "oci") / "registries") / key)
    # load() hands back a session only, so its caller cannot see which entry it got: a tag names the entry it
    # expects (push's default tag is the entry id); a tag moved to another entry of the same signer is refused.
    # A digest-pinned reference names exactly what it wants.
    res = pull(ref, registry=dest, trust=policy, now=now, plain_http=plain_http, entry=None if r.digest else r.tag)
    return res.entry, Path(res.registry)


def _loopback_plain(host: str) -> bool:
    """``TINYREG_OCI_PLAIN_HTTP=1`` lets ``load("oci://127.0.0.1:PORT/...")`` use plain http (loopback only)."""
    from registry.distribution.oci import is_loopback

    return os.environ.get("TINYREG_OCI_PLAIN_HTTP") == "1" and is_loopback(host)


__all__ = ["PullResult", "TransportError", "cached_registry", "pull"]
