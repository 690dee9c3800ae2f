"""What ``cosign verify-blob --bundle B model.onnx`` (libvmaf's --tiny-model-verify) checks, on recorded bundles, offline.

cosign 3 (the fork's CI pins v3.0.6; 2.4.2 and later detect a Sigstore bundle without
``--new-bundle-format``) hands the bundle to sigstore-go with the blob as the artifact. After
the signature, certificate identity and log checks, the artifact binding is:

* a ``messageSignature`` bundle (what ``cosign sign-blob`` makes): the bundle's SHA-256
  ``messageDigest`` is the blob's digest (and the signature is over the blob);
* a ``dsseEnvelope`` bundle (what ``tinyreg sign`` makes, keyless in CI or by key): the payload
  type is in-toto, the statement has at most 1024 subjects of at most 32 digests each, and one
  subject's ``sha256`` is the blob's digest.

``binds`` models that rule (written for this test from sigstore-go's documented behaviour). The
recorded Sigstore bundles show it on real keyless bundles (the signatures verified offline with
their trusted roots), and tinyreg's keyless path is shown to sign, as a DSSE in-toto statement, a
statement whose subjects include every file's digest, the model file first among them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from registry.signing.policy import load_policy, write_policy
from registry.signing.statement import build_statement
from registry.store.document import read_registry
from tests.conftest import SIGSTORE
from tests.factories import SIGSTORE_FIXTURES as FIXTURES

INTOTO = "application/vnd.in-toto+json"


def binds(bundle: dict[str, Any], blob_sha256: str) -> bool:
    """sigstore-go's artifact policy for one blob digest (after the cryptographic checks)."""
    if "messageSignature" in bundle:
        md = bundle["messageSignature"]["messageDigest"]
        return md["algorithm"] == "SHA2_256" and base64.b64decode(md["digest"]).hex() == blob_sha256
    env = bundle["dsseEnvelope"]
    if env["payloadType"] != INTOTO:
        return False
    st = json.loads(base64.b64decode(env["payload"]))
    subjects = st.get("subject") or []
    if not subjects or len(subjects) > 1024 or any(len(s.get("digest", {})) > 32 for s in subjects):
        return False
    return any(s["digest"].get("sha256") == blob_sha256 for s in subjects)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("pair", [0, 1, 2])
def test_message_signature_bundles_bind_their_blob(pair: int) -> None:
    artifact, bundle_name, *_ = FIXTURES[pair]
    bundle = json.loads((SIGSTORE / bundle_name).read_text())
    assert binds(bundle, _sha(SIGSTORE / artifact))
    others = {f[0] for f in FIXTURES if f[0]} - {artifact}
    assert not any(binds(bundle, _sha(SIGSTORE / o)) for o in others)


def test_recorded_keyless_dsse_bundle_binds_its_subject_only(tmp_path: Path) -> None:
    """A real keyless DSSE bundle (GitHub Actions identity): its verified payload names the blob cosign accepts."""
    _, bundle_name, _, identity, issuer = FIXTURES[3]
    data = (SIGSTORE / bundle_name).read_bytes()
    pol = tmp_path / "trust.json"
    write_policy(pol, identity=identity, issuer=issuer, trusted_root=SIGSTORE / "trusted_root.staging.json")
    ptype, payload = load_policy(pol).verify_dsse(data, bundle_name)  # signature, chain, identity, log: offline
    bundle = json.loads(data)
    assert ptype == INTOTO and base64.b64decode(bundle["dsseEnvelope"]["payload"]) == payload
    subject = json.loads(payload)["subject"]
    assert [s["digest"]["sha256"] for s in subject] == ["a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"]
    assert binds(bundle, "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf")
    for f in FIXTURES:
        if f[0]:
            assert not binds(bundle, _sha(SIGSTORE / f[0]))


def test_tinyreg_keyless_path_signs_a_statement_cosign_binds_to_the_model(
    signed_native: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tinyreg sign`` keyless: the DSSE payload is the entry statement, and its subjects bind the ONNX file."""
    import sigstore.sign

    from registry.signing._methods.sigstore_keyless import SigstoreSigner

    signed: list[bytes] = []

    class Signer:
        def __enter__(self) -> Signer:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def sign_dsse(self, statement: Any) -> Any:  # the recorded shape of a keyless DSSE bundle (FIXTURES[3])
            signed.append(statement._contents)
            rec = json.loads((SIGSTORE / FIXTURES[3][1]).read_text())
            rec["dsseEnvelope"]["payload"] = base64.b64encode(statement._contents).decode()
            return type("B", (), {"to_json": lambda _self: json.dumps(rec)})()

    class Context:
        @staticmethod
        def from_trust_config(config: object) -> Context:
            return Context()

        def signer(self, token: object, cache: bool = True) -> Signer:
            return Signer()

    monkeypatch.setattr(sigstore.sign, "SigningContext", Context)
    reg = read_registry(signed_native)
    for entry in reg.entries:
        statement = build_statement(reg, entry)
        bundle = json.loads(SigstoreSigner(token=object(), config=object()).sign_entry(statement))
        assert signed[-1] == statement  # the very statement bytes, as an in-toto statement (sigstore.dsse checked it)
        st = json.loads(statement)
        assert set(st) == {"_type", "subject", "predicateType", "predicate"}  # nothing protojson would refuse
        assert st["_type"] == "https://in-toto.io/Statement/v1"
        assert all(set(s) == {"name", "digest"} and set(s["digest"]) == {"sha256"} for s in st["subject"])
        model = reg.root / entry["onnx"]
        assert binds(bundle, _sha(model))
        assert not binds(bundle, hashlib.sha256(model.read_bytes() + b"\0").hexdigest())
        other = next(e for e in reg.entries if e["id"] != entry["id"])
        assert not binds(bundle, _sha(reg.root / other["onnx"]))  # a bundle never vouches for another entry's model


def test_shipped_entry_bundles_are_dsse_intoto(signed_native: Path) -> None:
    """The bundles ``tinyreg sign`` wrote (key mode here) have the DSSE in-toto form and bind their model."""
    reg = read_registry(signed_native)
    for entry in reg.entries:
        bundle = json.loads((reg.root / entry["sigstore_bundle"]).read_text())
        assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
        assert binds(bundle, _sha(reg.root / entry["onnx"]))
