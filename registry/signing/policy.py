"""Trust policies: who may sign a registry, held by the consumer outside the registry folder.

A policy file (``tinyreg trust ... --out FILE``) is JSON::

    {
      "format": "tinyreg-trust-policy",
      "version": 1,
      "keys": [{"public_key": "-----BEGIN PUBLIC KEY-----\\n...", "sha256": "<hex sha256 of the DER key>"}],
      "identities": [{"identity": "<exact SAN>", "issuer": "<exact OIDC issuer>",
                      "trusted_root": {<Sigstore trusted_root.json>}}]
    }

Several keys and identities may be listed (key rotation, several release
workflows); a signature is accepted when one of them verifies it. The file is
self-contained (keys and trusted roots inline), so it can live in a CI secret or
the consumer's repository. The registry's own ``signing`` block is turned into
the same object only when no policy is given (the registry then vouches for itself).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry._internal.jsonio import loads_json
from registry._internal.safeio import read_raw
from registry.errors import Error, InputError, SignatureError, UsageError
from registry.signing._methods.sigstore_keyless import NotAnEnvelope

if TYPE_CHECKING:
    from registry.signing.methods import Verifier

FORMAT = "tinyreg-trust-policy"
VERSION = 1
ENV_VAR = "TINYREG_TRUST"
TRUSTED_ROOT_NAME = "trusted_root.json"
CLIENT_TRUST_CONFIG_NAME = "client_trust_config.json"


@dataclass(frozen=True)
class KeyAnchor:
    pem: bytes
    sha256: str  # hex sha256 of the DER SubjectPublicKeyInfo

    def as_json(self) -> dict[str, str]:
        return {"public_key": self.pem.decode("ascii"), "sha256": self.sha256}


@dataclass(frozen=True)
class IdentityAnchor:
    identity: str
    issuer: str
    trusted_root: bytes  # canonical JSON of the Sigstore trusted root

    def as_json(self) -> dict[str, Any]:
        return {"identity": self.identity, "issuer": self.issuer, "trusted_root": json.loads(self.trusted_root)}


@dataclass(frozen=True)
class TrustPolicy:
    keys: tuple[KeyAnchor, ...] = ()
    identities: tuple[IdentityAnchor, ...] = ()
    source: str = "policy"
    external: bool = True  # False: derived from the registry's own signing block

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "keys": [k.as_json() for k in sorted(self.keys, key=lambda k: k.sha256)],
            "identities": [i.as_json() for i in sorted(self.identities, key=lambda i: (i.identity, i.issuer))],
        }

    def describe(self) -> str:
        parts = [f"key sha256:{k.sha256[:16]}" for k in self.keys]
        parts += [f"identity {i.identity} ({i.issuer})" for i in self.identities]
        return ", ".join(parts) or "nothing"

    def verifiers(self) -> list[Verifier]:
        """One verifier per key and identity the policy trusts."""
        from registry.signing._methods.ec_key import KeyVerifier
        from registry.signing._methods.sigstore_keyless import SigstoreVerifier

        out: list[Verifier] = [KeyVerifier(k) for k in self.keys]
        return out + [SigstoreVerifier(i) for i in self.identities]

    def verify_dsse(self, bundle_json: bytes, what: str) -> tuple[str, bytes]:
        """(payload type, payload) of a DSSE bundle signed by one of the policy's keys or identities."""
        from registry.signing.methods import method_of

        try:
            doc = loads_json(bundle_json, what)  # the one strict reader: no deep nesting, no duplicate keys
            method = method_of(doc["verificationMaterial"])
        except InputError as exc:
            raise SignatureError(exc.diagnostics()) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise SignatureError(f"{what} is not a Sigstore bundle") from exc
        candidates = [v for v in self.verifiers() if isinstance(v, method)]
        if not candidates:
            raise method.none_trusted(what, self.source)
        errors: list[SignatureError] = []
        for v in candidates:
            try:
                return v.verify_dsse(bundle_json, what)
            except NotAnEnvelope:
                raise
            except SignatureError as exc:
                errors.append(exc)
        raise method.none_verified(what, self.source, errors)


def key_fingerprint(pem: bytes, label: str) -> str:
    """hex sha256 of the DER public key; InputError unless ``pem`` is an EC public key in PEM."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # e.g. an unknown curve OID
        raise InputError(f"{label}: not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InputError(f"{label}: not an elliptic-curve (ECDSA) public key")
    return hashlib.sha256(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def canonical_root(data: bytes, label: str) -> bytes:
    doc = loads_json(data, f"{label}: trusted root is not JSON")
    if not isinstance(doc, dict) or "mediaType" not in doc:
        raise InputError(f"{label}: not a Sigstore trusted root")
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def parse_policy(data: bytes, label: str) -> TrustPolicy:
    """A TrustPolicy from policy-file bytes; InputError (exit 2) for anything malformed."""
    doc = loads_json(data, f"{label}: trust policy is not JSON")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{label}: not a tinyreg trust policy (format must be {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise InputError(f"{label}: trust policy version {doc.get('version')!r} is not supported (this tinyreg reads {VERSION})")
    unknown = sorted(set(doc) - {"format", "version", "keys", "identities", "comment"})
    if unknown:
        raise InputError(f"{label}: unknown trust policy fields {', '.join(unknown)}")
    raw_keys, raw_ids = doc.get("keys", []), doc.get("identities", [])
    if not isinstance(raw_keys, list) or not isinstance(raw_ids, list):
        raise InputError(f"{label}: keys and identities must be lists")
    keys = []
    for i, k in enumerate(raw_keys):
        if not isinstance(k, dict) or not isinstance(k.get("public_key"), str):
            raise InputError(f"{label}: keys[{i}] needs a public_key (PEM text)")
        pem = k["public_key"].encode("ascii", "replace")
        fp = key_fingerprint(pem, f"{label}: keys[{i}]")
        if k.get("sha256") not in (None, fp):
            raise InputError(f"{label}: keys[{i}].sha256 does not match its public_key")
        keys.append(KeyAnchor(pem, fp))
    ids = []
    for i, ident in enumerate(raw_ids):
        if not isinstance(ident, dict) or not all(isinstance(ident.get(f), str) and ident[f] for f in ("identity", "issuer")):
            raise InputError(f"{label}: identities[{i}] needs an exact identity and issuer")
        root = ident.get("trusted_root")
        if not isinstance(root, dict):
            raise InputError(f"{label}: identities[{i}] needs its trusted_root (the Sigstore trusted_root.json, inline)")
        ids.append(IdentityAnchor(ident["identity"], ident["issuer"], canonical_root(json.dumps(root).encode(), label)))
    if not keys and not ids:
        raise InputError(f"{label}: the trust policy trusts no key and no identity")
    return TrustPolicy(tuple(keys), tuple(ids), source=label)


def load_policy(path: str | os.PathLike[str]) -> TrustPolicy:
    p = Path(path).expanduser()
    try:
        data = read_raw(p, "policy")
    except FileNotFoundError as exc:
        raise InputError(f"{p}: no such trust policy file") from exc
    except OSError as exc:
        raise InputError(f"{p}: cannot read the trust policy ({exc.strerror})") from exc
    return parse_policy(data, str(p))


class NoPolicy:
    """The driver's decision that there is no consumer policy: a worker given it never reads its own environment."""

    def __repr__(self) -> str:
        return "NO_POLICY"

    def __reduce__(self) -> str:
        return "NO_POLICY"  # unpickles to the one instance


NO_POLICY = NoPolicy()


def policy_document(policy: TrustPolicy | None) -> str | None:
    """The policy as JSON text for a worker (the document itself, never a path the worker may not have)."""
    return None if policy is None else json.dumps({"source": policy.source, "policy": policy.as_json()}, sort_keys=True)


def policy_from_document(text: str | None) -> TrustPolicy | NoPolicy:
    """What ``policy_document`` made, back as the policy to enforce (NO_POLICY for None)."""
    if text is None:
        return NO_POLICY
    doc = loads_json(text, "the trust policy sent to this worker")
    if not isinstance(doc, dict) or not isinstance(doc.get("policy"), dict):
        raise InputError("the trust policy sent to this worker is not one")
    return parse_policy(json.dumps(doc["policy"]).encode(), str(doc.get("source", "policy")))


def resolve_trust(trust: str | os.PathLike[str] | TrustPolicy | NoPolicy | None) -> TrustPolicy | None:
    """The policy to enforce: the one given, else ``$TINYREG_TRUST`` if set, else None.

    Resolve it once, in the driver, and pass the TrustPolicy on (workers included): a worker
    must never fall back to its own environment. A set-but-empty variable is InputError.
    """
    if isinstance(trust, TrustPolicy):
        return trust
    if isinstance(trust, NoPolicy):
        return None
    if trust is None:
        env = os.environ.get(ENV_VAR)
        if env is None:
            return None
        if not env.strip():  # set but empty: a policy was meant and got lost; never "no policy"
            raise InputError(f"{ENV_VAR} is set but empty; name a trust policy file or unset it")
        trust = env
    if not str(trust).strip():
        raise InputError("the trust policy path is empty; name a trust policy file")
    return load_policy(trust)


def policy_inside(policy: TrustPolicy, root: Path) -> str | None:
    """Why ``policy`` cannot judge the registry folder ``root``: its file lies inside that folder (whoever edits the
    folder, a pull request, edits the policy with it). None when it lies outside (or is not a file's policy)."""
    if not policy.external:
        return None
    try:
        where, folder = Path(policy.source).expanduser().resolve(), root.resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if where == folder or folder in where.parents:
        return (f"the trust policy {policy.source} lies inside the registry folder it is to judge (whoever edits the "
                "folder edits the policy); keep the consumer's policy outside it")
    return None


def policy_from_registry(reg: Any) -> TrustPolicy:
    """The registry's own ``signing`` block as a policy (used only when the consumer gives none)."""
    from registry._internal.paths import confine

    doc = reg.doc.get("signing")
    if not isinstance(doc, dict):
        raise SignatureError("the registry records no signing policy ('tinyreg trust' sets one)")
    mode = doc.get("mode")
    source = "the registry's signing block"
    if mode == "key":
        path = confine(reg.root, str(doc.get("public_key", "")), what="signing.public_key")
        try:
            pem = read_raw(path, "key")
        except OSError as exc:
            raise SignatureError(f"pinned public key {path.name} is unreadable") from exc
        try:
            return TrustPolicy(keys=(KeyAnchor(pem, key_fingerprint(pem, path.name)),), source=source, external=False)
        except InputError as exc:
            raise SignatureError(exc.diagnostics()) from exc
    if mode == "keyless":
        if not doc.get("identity") or not doc.get("issuer"):
            raise SignatureError("keyless signing policy needs an exact identity and issuer")
        path = confine(reg.root, str(doc.get("trusted_root", "")), what="signing.trusted_root")
        try:
            root = canonical_root(read_raw(path, "bundle"), path.name)
        except OSError as exc:
            raise SignatureError(f"trusted root {path.name} is unreadable") from exc
        ident = IdentityAnchor(str(doc["identity"]), str(doc["issuer"]), root)
        return TrustPolicy(identities=(ident,), source=source, external=False)
    raise SignatureError(f"unknown signing mode {mode!r}")


def registry_block_mismatch(reg: Any, policy: TrustPolicy) -> str | None:
    """A finding when the registry's own signing block names a signer the consumer's policy does not trust."""
    if not isinstance(reg.doc.get("signing"), dict):
        return None
    try:
        own = policy_from_registry(reg)
    except Error as exc:
        return f"the registry's signing block is unusable ({exc.diagnostics()}); it is not used for the decision"
    fps = {k.sha256 for k in policy.keys}
    ids = {(i.identity, i.issuer, i.trusted_root) for i in policy.identities}
    foreign: list[Any] = [k for k in own.keys if k.sha256 not in fps]
    foreign += [i for i in own.identities if (i.identity, i.issuer, i.trusted_root) not in ids]
    if foreign:
        return (f"the registry's signing block names a signer the trust policy does not trust ({own.describe()}); "
                "only the trust policy decides")
    return None


def _embedded(staging: bool, name: str) -> Path | None:
    try:
        import sigstore
    except ImportError:
        return None
    host = "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev" if staging else "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
    path = Path(sigstore.__file__).parent / "_store" / host / name
    return path if path.is_file() else None


def write_policy(
    out: Path,
    *,
    keys: list[Path] | None = None,
    identity: str | None = None,
    issuer: str | None = None,
    trusted_root: Path | None = None,
    staging: bool = False,
    replace: bool = False,
) -> TrustPolicy:
    """Write (or extend, unless ``replace``) the policy file ``out``; returns the policy written.

    Keyless anchors also get ``trusted_root.json`` and ``client_trust_config.json`` next to
    ``out`` (for the ``sigstore`` and ``model_signing`` CLIs). Nothing is written on bad input.
    """
    from registry._internal.atomic import write_atomic

    out = out.expanduser()
    keys = keys or []
    if not keys and not (identity or issuer):
        raise UsageError("a trust policy needs a public key or a keyless identity and issuer", hint="trust")
    if bool(identity) != bool(issuer):
        raise UsageError("a keyless anchor needs both an identity and an issuer (exact values)", hint="trust")
    if trusted_root is not None and staging:
        raise UsageError("give a trusted root file or the staging instance, not both", hint="trusted_root_or_staging")
    if (trusted_root is not None or staging) and not identity:
        raise UsageError("a trusted root and the staging instance apply to keyless anchors (identity and issuer), not to keys")
    new_keys = []
    for k in keys:
        try:
            pem = read_raw(k, "key")
        except OSError as exc:
            raise InputError(f"{k}: cannot read") from exc
        new_keys.append(KeyAnchor(pem, key_fingerprint(pem, str(k))))
    new_ids = []
    root_bytes = b""
    if identity and issuer:
        src = trusted_root or _embedded(staging, TRUSTED_ROOT_NAME)
        if src is None:
            from registry.errors import MissingDependency

            raise MissingDependency("a keyless trust anchor without a trusted root file", "sign")
        try:
            root_bytes = read_raw(src, "bundle")
        except OSError as exc:
            raise InputError(f"{src}: cannot read the trusted root") from exc
        from registry.signing._methods.sigstore_keyless import load_trusted_root

        load_trusted_root(root_bytes, str(src))
        new_ids.append(IdentityAnchor(identity, issuer, canonical_root(root_bytes, str(src))))
    old = TrustPolicy()
    if out.exists() and not replace:
        old = load_policy(out)
    merged_keys = {k.sha256: k for k in (*old.keys, *new_keys)}
    merged_ids = {(i.identity, i.issuer, i.trusted_root): i for i in (*old.identities, *new_ids)}
    policy = TrustPolicy(tuple(merged_keys.values()), tuple(merged_ids.values()), source=str(out))
    data = (json.dumps(policy.as_json(), indent=2, sort_keys=True) + "\n").encode()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, data)
        if new_ids:
            from registry.signing._methods.model_signing_v1 import client_trust_config

            write_atomic(out.parent / TRUSTED_ROOT_NAME, root_bytes)
            signing = None
            if trusted_root is None:
                cfg = _embedded(staging, "signing_config.v0.2.json")
                signing = json.loads(cfg.read_bytes()) if cfg else None
            config = client_trust_config(json.loads(root_bytes), signing)
            write_atomic(out.parent / CLIENT_TRUST_CONFIG_NAME, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    except OSError as exc:
        raise InputError(f"{out}: cannot write the trust policy ({exc.strerror})") from exc
    return policy
