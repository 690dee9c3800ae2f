"""Signing methods behind Signer/Verifier: callers take any Signer, policies dispatch bundles to the method's verifiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from registry.errors import SignatureError, UsageError
from registry.signing._methods.ec_key import KeySigner, KeyVerifier
from registry.signing._methods.sigstore_keyless import SigstoreSigner, SigstoreVerifier
from registry.signing.methods import Signer, method_of, signer_from_options, verifier_from_options
from registry.signing.policy import TrustPolicy
from registry.signing.sign import set_policy, sign_entries
from registry.store.document import Registry
from registry.verify import verify_registry
from tests.factories import keypair


@dataclass
class CountingSigner:
    """Any Signer will do: this one wraps the key method and counts what it is asked to sign."""

    inner: KeySigner
    calls: list[str] = field(default_factory=list)

    def prepare(self, reg: Registry) -> TrustPolicy | None:
        self.calls.append("prepare")
        return self.inner.prepare(reg)

    def sign_entry(self, statement: bytes) -> bytes:
        self.calls.append("entry")
        return self.inner.sign_entry(statement)

    def sign_folder(self, statement: bytes) -> bytes:
        self.calls.append("folder")
        return self.inner.sign_folder(statement)


def test_sign_entries_takes_any_signer(reg_path: Path, tmp_path: Path) -> None:
    priv, pub = keypair(tmp_path, "k")
    set_policy(reg_path, public_key=pub)
    signer = CountingSigner(KeySigner(priv))
    _s: Signer = signer  # the protocol is structural
    written = sign_entries(reg_path, None, signer=signer)
    assert signer.calls[0] == "prepare" and signer.calls[-1] == "folder"
    assert signer.calls.count("entry") == len(written) - 1
    assert verify_registry(reg_path).ok


def test_options_build_the_signer_once(tmp_path: Path) -> None:
    priv, _ = keypair(tmp_path, "k")
    assert isinstance(signer_from_options(key=priv), KeySigner)
    assert isinstance(signer_from_options(identity_token="x"), SigstoreSigner)  # the token is checked by prepare()


def test_a_key_signer_refuses_a_keyless_registry_before_reading_its_key(reg_path: Path, tmp_path: Path) -> None:
    import json

    doc = json.loads(reg_path.read_text())
    doc["signing"] = {"mode": "keyless", "identity": "a", "issuer": "b", "trusted_root": "trust/trusted_root.json"}
    reg = Registry(reg_path, doc)
    with pytest.raises(UsageError, match="policy is keyless"):
        KeySigner(tmp_path / "no-such-key.pem").prepare(reg)


def test_bundles_go_to_the_verifiers_of_their_method() -> None:
    assert method_of({"publicKey": {"hint": "x"}}) is KeyVerifier
    assert method_of({"certificate": {"rawBytes": "x"}}) is SigstoreVerifier
    with pytest.raises(SignatureError, match="signed with a key, but the trust policy \\(p\\) trusts no keys"):
        TrustPolicy(source="p").verify_dsse(b'{"verificationMaterial": {"publicKey": {}}}', "bundle")


def test_verifier_options_refuse_both_or_neither(tmp_path: Path) -> None:
    _, pub = keypair(tmp_path, "k")
    with pytest.raises(UsageError, match="not both"):
        verifier_from_options(key=pub, identity="a", issuer="b")
    with pytest.raises(UsageError, match="needs a public key or a keyless identity"):
        verifier_from_options(identity="a")
    v = verifier_from_options(key=pub)
    assert v.describe()["key_sha256"] == v.as_policy().keys[0].sha256


def test_a_given_signer_or_verifier_with_options_is_refused(reg_path: Path, tmp_path: Path) -> None:
    """An option beside a ready signer or verifier would be silently ignored: both given is a usage error."""
    from registry.signing.verify import verify_bundle

    priv, pub = keypair(tmp_path, "k")
    other, _ = keypair(tmp_path, "other")
    with pytest.raises(UsageError, match="not both"):
        sign_entries(reg_path, None, signer=KeySigner(priv), key=other)
    with pytest.raises(UsageError, match="not both"):
        verify_bundle(tmp_path / "any.sigstore.json", artifact=None, verifier=KeyVerifier.from_file(pub), key=pub)
