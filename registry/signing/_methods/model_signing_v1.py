"""OpenSSF Model Signing (OMS) v1.0: a whole-folder signature as ``model_signing`` 1.1.x writes it.

Only the standard library and ``cryptography``; verified both ways against the
real ``model_signing`` CLI (``tests/test_trust_snapshot.py``). Format:

* bundle: Sigstore bundle v0.3 (compact JSON) with a DSSE envelope; key mode
  carries ``publicKey.hint = hex(sha256(PEM SubjectPublicKeyInfo))`` (cosign's
  hint is ``base64(sha256(DER))``; tinyreg verifies by the pinned key whatever
  the hint says) and no log entries;
* statement: in-toto Statement v1, one subject ``{name: <folder name>, digest:
  {sha256: sha256(d1 || d2 ...)}}`` over the raw resource digests in predicate
  order, predicate type ``https://model_signing/signature/v1.0``, predicate
  ``{serialization: {method: files, hash_type: sha256, allow_symlinks: false,
  ignore_paths}, resources: [{name, algorithm: sha256, digest}]}``, resources
  sorted by path components (``a/z < a-b < a.txt``);
* every file below the folder is a resource, hidden ones included; only the
  top-level ``.git``, ``.gitattributes``, ``.github`` and ``.gitignore`` and the
  signature itself are ignored; a symlink anywhere refuses the folder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from registry._internal.jsonio import loads_json
from registry.errors import InputError, SignatureError
from registry.signing._methods import BUNDLE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE, STATEMENT_TYPE, pae

if TYPE_CHECKING:
    from registry.signing.policy import TrustPolicy

PREDICATE_TYPE = "https://model_signing/signature/v1.0"
PREDICATE_TYPE_V0_1 = "https://model_signing/Digests/v0.1"  # pre-1.0; deliberately not accepted
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
SIGNING_CONFIG_V0_2_MEDIA_TYPE = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
GIT_IGNORE_PATHS: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")

Manifest = list[tuple[str, str]]  # (posix relative name, sha256 hex), in signed order


class UnsignableFolder(InputError):
    """The folder holds something model_signing refuses (a symlink, a special file)."""


class ManifestMismatch(SignatureError):
    """The folder's content differs from the signed manifest."""

    def __init__(self, *, missing: list[str], extra: list[str], changed: list[str]) -> None:
        self.missing, self.extra, self.changed = missing, extra, changed
        parts = []
        if changed:
            parts.append(f"changed since signing: {', '.join(changed)}")
        if extra:
            parts.append(f"not covered by the snapshot: {', '.join(extra)}")
        if missing:
            parts.append(f"signed but missing: {', '.join(missing)}")
        super().__init__("snapshot mismatch: " + "; ".join(parts))


def sort_key(name: str) -> tuple[str, ...]:
    """model_signing sorts PurePosixPath keys: by path components, not by plain string order."""
    return tuple(name.split("/"))


def _ignore_parts(path: str) -> tuple[str, ...] | None:
    """Components of an ignore entry; None if it can match nothing (absolute, or with '..')."""
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts:
        return None
    if not p.parts:
        raise SignatureError(f"ignore path {path!r} covers the whole folder")
    return p.parts


def _iter_tree(directory: Path, rel: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Path]]:
    with os.scandir(directory) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        child_rel = (*rel, entry.name)
        path = Path(entry.path)
        yield child_rel, path
        if entry.is_dir(follow_symlinks=False):
            yield from _iter_tree(path, child_rel)


def _check_path(path: Path) -> None:
    if path.is_symlink():
        raise UnsignableFolder(f"{path}: a symlink (OpenSSF model signing refuses folders with symlinks)")
    if not (path.is_file() or path.is_dir()):
        raise UnsignableFolder(f"{path}: not a regular file or folder")


def manifest_of_folder(
    root: Path,
    ignore: Iterable[str] = (),
    *,
    overlay: Mapping[str, bytes | None] | None = None,
    known: Mapping[str, str] | None = None,
) -> Manifest:
    """(name, sha256) of every file of ``root`` as model_signing's ``files`` serialization sees it.

    ``overlay`` maps names to the bytes they are about to hold (``None``: about to be
    removed), so a writer can sign the folder as it will be after its commit.
    ``known`` maps names to the sha256 of bytes the caller already read and hashed.
    """
    ignores = {p for p in (_ignore_parts(i) for i in (*ignore, *GIT_IGNORE_PATHS)) if p is not None}
    overlay = overlay or {}
    known = known or {}

    def ignored(rel: tuple[str, ...]) -> bool:
        return any(rel[: len(ig)] == ig for ig in ignores)

    _check_path(root)
    if not root.is_dir():
        raise UnsignableFolder(f"{root}: not a folder")
    digests: dict[str, str] = {}
    for rel, path in _iter_tree(root, ()):
        _check_path(path)
        name = "/".join(rel)
        if path.is_file() and not ignored(rel) and name not in overlay:
            if name in known:
                digests[name] = known[name]
            else:
                from registry._internal.hashing import sha256_file

                digests[name] = sha256_file(path).sha256
    for name, data in overlay.items():
        if data is not None and not ignored(tuple(name.split("/"))):
            digests[name] = hashlib.sha256(data).hexdigest()
    return sorted(digests.items(), key=lambda item: sort_key(item[0]))


def subject_digest(manifest: Iterable[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for _name, digest_hex in manifest:
        h.update(bytes.fromhex(digest_hex))
    return h.hexdigest()


def recorded_ignores(ignore: Iterable[str]) -> list[str]:
    """The ``ignore_paths`` ``model_signing sign`` records: the given ones plus the git paths."""
    return sorted({*ignore, *GIT_IGNORE_PATHS})


def build_statement(model_name: str, manifest: Manifest, ignore_paths: list[str]) -> bytes:
    """The statement payload, laid out like protobuf's MessageToJson (indent 2)."""
    ser: dict[str, Any] = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}
    if ignore_paths:
        ser["ignore_paths"] = ignore_paths
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": subject_digest(manifest)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": ser,
            "resources": [{"name": name, "algorithm": "sha256", "digest": digest} for name, digest in manifest],
        },
    }
    return json.dumps(statement, indent=2).encode("utf-8")


def public_key_hint(public_pem: bytes) -> str:
    """model_signing's hint: hex(sha256(PEM SubjectPublicKeyInfo as cryptography writes it))."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

    return hashlib.sha256(load_pem_public_key(public_pem).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def sign_key(statement: bytes, private_key: Any) -> bytes:
    """A key-mode bundle exactly as ``model_signing sign key`` writes it (ECDSA, hash by curve)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pub = private_key.public_key()
    algs: dict[str, hashes.HashAlgorithm] = {"secp256r1": hashes.SHA256(), "secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}
    sig = private_key.sign(pae(INTOTO_PAYLOAD_TYPE, statement), ec.ECDSA(algs[pub.curve.name]))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": public_key_hint(pub.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(statement).decode("ascii"),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(sig).decode("ascii"), "keyid": ""}],
        },
    }
    return json.dumps(bundle, separators=(",", ":")).encode("utf-8")


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SignatureError(f"signed folder statement: {what} must be a JSON object")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise SignatureError(f"signed folder statement: {what} must be a string")
    return value


def manifest_from_statement(payload: bytes) -> tuple[str, Manifest, list[str]]:
    """(folder name, manifest in signed order, ignore_paths) of a verified v1.0 statement payload."""
    try:
        statement = _obj(loads_json(payload, "signed folder statement"), "statement")
    except (ValueError, UnicodeDecodeError, InputError) as exc:
        raise SignatureError("signed folder statement is not JSON") from exc
    if statement.get("_type") != STATEMENT_TYPE:
        raise SignatureError(f"signed payload is not an in-toto {STATEMENT_TYPE} statement")
    ptype = statement.get("predicateType")
    if ptype != PREDICATE_TYPE:
        extra = " (pre-1.0 signatures are not accepted)" if ptype == PREDICATE_TYPE_V0_1 else ""
        raise SignatureError(f"signed statement has predicate type {ptype!r}, not {PREDICATE_TYPE}{extra}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise SignatureError("signed folder statement must have exactly one subject")
    subject = _obj(subjects[0], "subject")
    name = _str(subject.get("name"), "subject.name")
    root_digest = _str(_obj(subject.get("digest"), "subject.digest").get("sha256"), "subject.digest.sha256")
    predicate = _obj(statement.get("predicate"), "predicate")
    ser = _obj(predicate.get("serialization"), "predicate.serialization")
    if ser.get("method") != "files" or ser.get("hash_type") != "sha256":
        raise SignatureError("signed folder statement: only the 'files' serialization with sha256 is accepted")
    if ser.get("allow_symlinks") not in (None, False):
        raise SignatureError("signed folder statement allows symlinks; tinyreg does not")
    ignore_paths = ser.get("ignore_paths", [])
    if not isinstance(ignore_paths, list) or not all(isinstance(p, str) for p in ignore_paths):
        raise SignatureError("signed folder statement: ignore_paths must be a list of strings")
    resources = predicate.get("resources")
    if not isinstance(resources, list):
        raise SignatureError("signed folder statement: resources must be a list")
    manifest: Manifest = []
    seen: set[str] = set()
    h = hashlib.sha256()
    for res in resources:
        res = _obj(res, "resource")
        rname = str(PurePosixPath(_str(res.get("name"), "resource.name")))
        if res.get("algorithm") != "sha256":
            raise SignatureError(f"signed folder statement: {rname} is not hashed with sha256")
        try:
            raw = bytes.fromhex(_str(res.get("digest"), "resource.digest"))
        except ValueError as exc:
            raise SignatureError(f"signed folder statement: digest of {rname} is not hex") from exc
        if rname in seen or len(raw) != 32:
            raise SignatureError(f"signed folder statement: resource {rname} is duplicated or not a sha256")
        seen.add(rname)
        h.update(raw)
        manifest.append((rname, raw.hex()))
    if h.hexdigest() != root_digest:
        raise SignatureError("signed folder statement is inconsistent: its resources do not hash to its subject digest")
    return name, manifest, ignore_paths


def compare(expected: Manifest, actual: Manifest) -> None:
    """Raise ManifestMismatch unless the two manifests name the same files with the same digests."""
    want, have = dict(expected), dict(actual)
    missing = sorted(set(want) - set(have), key=sort_key)
    extra = sorted(set(have) - set(want), key=sort_key)
    changed = [n for n in sorted(set(want) & set(have), key=sort_key) if want[n] != have[n]]
    if missing or extra or changed:
        raise ManifestMismatch(missing=missing, extra=extra, changed=changed)


def client_trust_config(trusted_root: dict[str, Any], signing_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Sigstore ``ClientTrustConfig`` (``sigstore --trust-config``, ``model_signing ... --trust_config``).

    Without ``signing_config`` an empty v0.2 one is used: enough to verify, not to sign.
    """
    return {
        "mediaType": CLIENT_TRUST_CONFIG_MEDIA_TYPE,
        "trustedRoot": trusted_root,
        "signingConfig": signing_config or {"mediaType": SIGNING_CONFIG_V0_2_MEDIA_TYPE},
    }


class FolderVerifier:
    """Verifies a folder against an OpenSSF Model Signing v1.0 signature, under a trust policy (key or keyless)."""

    def __init__(self, policy: TrustPolicy) -> None:
        self.policy = policy

    def verify(self, bundle: Path, bundle_json: bytes, folder: Path) -> dict[str, Any]:
        """Like ``model_signing verify``: the signed ignore_paths and the signature itself are skipped."""
        import os

        ptype, payload = self.policy.verify_dsse(bundle_json, str(bundle))
        if ptype != INTOTO_PAYLOAD_TYPE:
            raise SignatureError(f"{bundle}: payload type {ptype!r} is not an in-toto statement")
        _name, expected, ignores = manifest_from_statement(payload)
        extra = list(ignores)
        rel = os.path.relpath(os.path.realpath(bundle), os.path.realpath(folder))
        if not rel.startswith(".."):
            extra.append(rel.replace(os.sep, "/"))
        try:
            actual = manifest_of_folder(folder, extra)
        except UnsignableFolder as exc:
            raise SignatureError(exc.diagnostics()) from exc
        compare(expected, actual)
        return {"payload_type": ptype, "files": len(expected), "ignore_paths": sorted(ignores)}


def is_oms_statement(payload: bytes) -> bool:
    """Whether a signed statement is an OpenSSF Model Signing v1.0 one (a folder or a single file)."""
    import contextlib

    from registry.errors import Error

    with contextlib.suppress(Error, ValueError):
        doc = loads_json(payload, "signed statement")
        return isinstance(doc, dict) and doc.get("predicateType") == PREDICATE_TYPE
    return False


def verify_single_file(payload: bytes, artifact: Path) -> dict[str, Any]:
    """An OpenSSF Model Signing v1.0 signature of one file: a single resource ``"."`` whose digest is the file's sha256
    (the subject digest is the sha256 of that digest, as for a folder of one file); the subject name is the file name
    the signer saw, reported but not required to match (``model_signing verify`` does not compare it)."""
    from registry._internal.hashing import sha256_file

    name, manifest, _ignores = manifest_from_statement(payload)
    if [n for n, _ in manifest] != ["."]:
        raise SignatureError(f"the statement signs a folder ({len(manifest)} resources), not the single file {artifact.name}; "
                             "give the folder")
    got = sha256_file(artifact).sha256
    if manifest[0][1] != got:
        raise SignatureError(f"{artifact.name}: sha256 {got[:16]}... is not the signed digest {manifest[0][1][:16]}...")
    return {"format": "openssf-model-signing-v1.0", "subjects": [name], "files": 1}
