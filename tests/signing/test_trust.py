"""Trust anchored outside the registry: the attacker edits the folder, the consumer's policy catches it.

Each attack test plays the attacker end to end (edit the folder, ``tinyreg pin --all``,
which also re-renders the cards) and must be caught both by ``tinyreg verify --trust``
(exit 1) and by ``registry.load(..., trust=...)`` (SignatureError).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import registry
from registry.errors import InputError, IntegrityError, SignatureError
from registry.runtime.loader import SmokeModelWarning
from registry.signing.policy import load_policy, write_policy
from registry.signing.sign import sign_entries
from registry.signing.snapshot import STATE_NAME, state_dir
from registry.verify import verify_registry
from tests.factories import SIGSTORE_FIXTURES, Signed, keypair, make_signed
from tests.factories import invoke_cli as cli
from tests.factories import run_tinyreg as run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    return make_signed(tmp_path)


def pin_all(s: Signed) -> None:
    code, _, err = cli("pin", "--all", "--registry", str(s.reg))
    assert code == 0, err


def caught(s: Signed, *needles: str | tuple[str, ...], entry: str = "dists_vgg16", int8: bool = False) -> list[str]:
    """verify --trust exits 1 naming every needle (a tuple: all its parts in one finding), and load(trust=...) raises SignatureError."""
    code, stdout, stderr = cli("verify", "--registry", str(s.reg), "--trust", str(s.policy), "--json")
    assert code == 1, (stdout, stderr)
    report = json.loads(stdout)
    msgs = [f"{f['check']}: {f['message']}" for f in report["findings"] if f["severity"] == "error"]
    for n in needles:
        parts = (n,) if isinstance(n, str) else n
        assert any(all(part in m for part in parts) for m in msgs), (n, msgs)
    with pytest.raises(SignatureError):
        registry.load(entry, s.reg, trust=s.policy, int8=int8)
    return msgs


@pytest.mark.slow
def test_signed_registry_passes_under_the_policy(signed: Signed) -> None:
    p = run("verify", "--registry", str(signed.reg), "--trust", str(signed.policy))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "vouches for itself" not in p.stderr
    with pytest.warns(SmokeModelWarning):
        sess = registry.load("dists_vgg16", signed.reg, trust=signed.policy)
    assert [i.name for i in sess.get_inputs()] == ["ref", "dist"]
    with pytest.warns(SmokeModelWarning):
        registry.load("lpips_vgg16", signed.reg, trust=signed.policy, int8=True)
    state = json.loads((state_dir() / STATE_NAME).read_text())
    assert [v["version"] for v in state["registries"].values()] == [1]
    assert signed.doc()["snapshot"]["version"] == 1
    # TINYREG_TRUST is honoured by the CLI and by load
    env = {"TINYREG_TRUST": str(signed.policy)}
    assert run("verify", "--registry", str(signed.reg), env=env).returncode == 0
    (signed.root / "dists_vgg16.json").write_bytes((signed.root / "dists_vgg16.json").read_bytes() + b" ")
    assert run("verify", "--registry", str(signed.reg), env=env).returncode == 1
    os.environ["TINYREG_TRUST"] = str(signed.policy)  # the autouse fixture removes it again
    with pytest.raises(SignatureError):
        registry.load("dists_vgg16", signed.reg)


@pytest.mark.slow
def test_without_a_policy_the_registry_vouches_for_itself(signed: Signed) -> None:
    p = run("verify", "--registry", str(signed.reg))
    assert p.returncode == 0, p.stdout
    assert p.stderr.count("the registry vouches for itself") == 1
    j = run("verify", "--registry", str(signed.reg), "--json")
    assert json.loads(j.stdout)["trust"]["policy"] is None


@pytest.mark.slow
def test_attack_strip_every_signature_and_the_policy(signed: Signed) -> None:
    doc = signed.doc()
    doc.pop("snapshot")
    for m in doc["models"]:
        m.pop("sigstore_bundle")
    signed.write_doc(doc)
    for b in signed.root.glob("*.sigstore.json"):
        b.unlink()
    pin_all(signed)
    assert run("verify", "--registry", str(signed.reg)).returncode == 0  # the old model: the folder vouches for itself
    caught(signed, "registry.sigstore.json is missing", "entry is not signed")


@pytest.mark.slow
def test_attack_own_key_and_re_sign(signed: Signed, tmp_path: Path) -> None:
    """The attacker records their own key in the registry and re-signs everything with it."""
    evil_priv, evil_pub = keypair(tmp_path, "mallory")
    assert run("trust", "--key", str(evil_pub), "--registry", str(signed.reg)).returncode == 0
    assert run("sign", "--all", "--key", str(evil_priv), "--registry", str(signed.reg)).returncode == 0
    assert run("verify", "--registry", str(signed.reg)).returncode == 0  # self-vouching accepts it
    caught(signed, "snapshot: registry.sigstore.json: DSSE signature does not verify with any of the 1 key(s)",
           "signature: bundle dists_vgg16.onnx.sigstore.json: DSSE signature does not verify",
           "trust: the registry's signing block names a signer the trust policy does not trust")


def test_attack_registry_re_signed_with_another_key(signed: Signed, tmp_path: Path) -> None:
    """No signing block at all: the attacker just re-signs with a key of their own."""
    evil_priv, _ = keypair(tmp_path, "mallory")
    doc = signed.doc()
    doc["models"][0]["notes"] = "now with a backdoor"
    signed.write_doc(doc)
    pin_all(signed)
    assert run("sign", "--all", "--key", str(evil_priv), "--registry", str(signed.reg)).returncode == 0
    caught(signed, "snapshot: registry.sigstore.json: DSSE signature does not verify", "signature: bundle")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quant_accuracy_budget_plcc", 0.9),
        ("license", "proprietary"),
        ("input_conventions", {"normalisation": "none", "layout": "NCHW"}),
        ("provenance", {"exporter": "tinyreg export dists", "tools": {"tinyreg": "0.1.0"}}),
        ("parity", {"passed": True, "max_abs_diff": 0.0, "pairs": 60}),
        ("quant", {"gate": {"passed": True, "drop": 0.0}}),
        ("smoke", False),
    ],
)
def test_attack_edit_signed_field(signed: Signed, field: str, value: object) -> None:
    doc = signed.doc()
    signed.row(doc)[field] = value
    signed.write_doc(doc)
    pin_all(signed)  # and cards re-rendered
    msgs = caught(signed, ("fields changed since signing: ", field), "snapshot mismatch: changed since signing: ")
    assert any("registry.json" in m for m in msgs if m.startswith("snapshot"))


def test_attack_restore_older_signed_entry(signed: Signed, tmp_path: Path) -> None:
    """Mix-and-match: an older, validly signed release of one entry inside the newer registry."""
    old = tmp_path / "old-release"
    shutil.copytree(signed.root, old)
    old_row = signed.row(signed.doc())
    # the maintainer publishes a new release of the entry and signs it
    doc = signed.doc()
    signed.row(doc)["notes"] = "release 2"  # (a tighter budget would need the gate run again: verify says so)
    signed.write_doc(doc)
    pin_all(signed)  # the card shows the notes
    sign_entries(signed.reg, None, key=signed.priv)
    assert run("verify", "--registry", str(signed.reg), "--trust", str(signed.policy)).returncode == 0
    # the attacker puts the old row, files and bundle back
    for name in ("dists_vgg16.onnx", "dists_vgg16.int8.onnx", "dists_vgg16.json", "dists_vgg16.onnx.sigstore.json"):
        shutil.copy(old / name, signed.root / name)
    doc = signed.doc()
    doc["models"] = [old_row if m["id"] == "dists_vgg16" else m for m in doc["models"]]
    signed.write_doc(doc)
    pin_all(signed)
    msgs = caught(signed, "snapshot mismatch")
    assert not any(m.startswith("signature:") and "dists_vgg16" in m for m in msgs)  # the old entry itself is genuine


@pytest.mark.slow
def test_attack_older_signed_registry_restored_in_place(signed: Signed, tmp_path: Path) -> None:
    v1 = tmp_path / "v1"
    shutil.copytree(signed.root, v1)
    sign_entries(signed.reg, None, key=signed.priv)  # version 2, seen by the consumer
    assert signed.doc()["snapshot"]["version"] == 2
    assert run("verify", "--registry", str(signed.reg), "--trust", str(signed.policy)).returncode == 0
    shutil.rmtree(signed.root)
    shutil.copytree(v1, signed.root)
    caught(signed, "snapshot version 1 is older than version 2 already seen for this registry (rollback)")
    # a fresh consumer (no state) has no record to compare against: documented in docs/trust.md
    os.environ["TINYREG_STATE_DIR"] = str(tmp_path / "fresh-runner")
    assert run("verify", "--registry", str(signed.reg), "--trust", str(signed.policy)).returncode == 0


def test_attack_snapshot_read_long_after_expiry(signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from registry.cli import app
    from registry.signing import snapshot

    later = datetime.now(UTC) + timedelta(days=366)
    assert verify_registry(signed.reg, trust=signed.policy).ok
    report = verify_registry(signed.reg, trust=signed.policy, now=later)
    assert any(f.check == "snapshot" and "expired" in f.message for f in report.errors)
    with pytest.raises(SignatureError, match="expired"):
        registry.load("dists_vgg16", signed.reg, trust=signed.policy, now=later)
    monkeypatch.setattr(snapshot, "now_utc", lambda: later)
    res = CliRunner().invoke(app, ["verify", "--registry", str(signed.reg), "--trust", str(signed.policy)])
    assert res.exit_code == 1 and "expired" in res.output
    with pytest.raises(SignatureError, match="expired"):
        registry.load("dists_vgg16", signed.reg, trust=signed.policy)
    # --expires-in sets the window
    sign_entries(signed.reg, None, key=signed.priv, expires_in_days=400, now=datetime.now(UTC))
    assert CliRunner().invoke(app, ["verify", "--registry", str(signed.reg), "--trust", str(signed.policy)]).exit_code == 0


def test_attack_unsigned_int8_sibling(signed: Signed) -> None:
    """The attacker slips in an int8 sibling of their own and declares it."""
    doc = signed.doc()
    row = signed.row(doc, "lpips_vgg16")
    shutil.copy(signed.root / "lpips_vgg16.onnx", signed.root / "lpips_vgg16.int8.onnx")  # any graph will do
    row["quant_mode"] = "dynamic"
    signed.write_doc(doc)
    pin_all(signed)
    caught(signed, ("lpips_vgg16.int8.onnx", "changed since it was signed"), ("fields changed since signing", "int8_sha256"),
           entry="lpips_vgg16", int8=True)


def test_attack_undeclared_int8_sibling(reg_path: Path, tmp_path: Path) -> None:
    """An int8 file dropped next to an entry that has none: not covered by the entry nor by the snapshot."""
    priv, pub = keypair(tmp_path, "k")
    policy = tmp_path / "trust.json"
    write_policy(policy, keys=[pub])
    sign_entries(reg_path, None, key=priv)
    s = Signed(reg_path, priv, pub, policy)
    assert run("verify", "--registry", str(reg_path), "--trust", str(policy)).returncode == 0
    shutil.copy(reg_path.parent / "dists_vgg16.onnx", reg_path.parent / "dists_vgg16.int8.onnx")
    pin_all(s)
    caught(s, "the signature does not cover dists_vgg16.int8.onnx", "not covered by the snapshot: dists_vgg16.int8.onnx")


def test_attack_swap_model_and_repin(signed: Signed) -> None:
    shutil.copy(signed.root / "lpips_vgg16.onnx", signed.root / "dists_vgg16.onnx")
    pin_all(signed)
    caught(signed, "fields changed since signing: ", "dists_vgg16.onnx changed since it was signed")


def test_attack_extra_file_in_folder(signed: Signed) -> None:
    """verify --trust checks every file of the folder; load checks registry.json and the files it loads."""
    (signed.root / "payload.onnx.data").write_bytes(b"\0" * 64)
    code, stdout, _ = cli("verify", "--registry", str(signed.reg), "--trust", str(signed.policy), "--json")
    assert code == 1 and "not covered by the snapshot: payload.onnx.data" in stdout
    with pytest.warns(SmokeModelWarning):
        registry.load("dists_vgg16", signed.reg, trust=signed.policy)
    other = signed.root / "lpips_vgg16.onnx"
    other.write_bytes(other.read_bytes() + b"\0")  # another entry's file: not read by this load
    with pytest.warns(SmokeModelWarning):
        registry.load("dists_vgg16", signed.reg, trust=signed.policy)
    with pytest.raises(IntegrityError):  # its own pin catches it before any signature
        registry.load("lpips_vgg16", signed.reg, trust=signed.policy)


def test_legacy_registry_refused_under_a_policy(vmafx_copy: Path, tmp_path: Path) -> None:
    _, pub = keypair(tmp_path, "k")
    pol = tmp_path / "trust.json"
    write_policy(pol, keys=[pub])
    report = verify_registry(vmafx_copy, trust=pol)
    assert any(f.check == "trust" and "cannot carry signatures" in f.message for f in report.errors)
    entry = json.loads(vmafx_copy.read_text())["models"][0]["id"]
    with pytest.raises(SignatureError, match="cannot be signed"):
        registry.load(entry, vmafx_copy, trust=pol)


@pytest.mark.slow
def test_policy_file_rotation_and_format(tmp_path: Path) -> None:
    _, a = keypair(tmp_path, "a")
    _, b = keypair(tmp_path, "b")
    pol = tmp_path / "trust.json"
    p = run("trust", "--key", str(a), "--out", str(pol))
    assert p.returncode == 0, p.stderr
    assert run("trust", "--key", str(b), "--out", str(pol)).returncode == 0  # rotation: a second key is added
    doc = json.loads(pol.read_text())
    assert doc["format"] == "tinyreg-trust-policy" and doc["version"] == 1 and len(doc["keys"]) == 2
    assert len(load_policy(pol).keys) == 2
    assert run("trust", "--key", str(b), "--out", str(pol), "--replace").returncode == 0
    assert len(load_policy(pol).keys) == 1


def test_rotated_key_verifies(signed: Signed, tmp_path: Path) -> None:
    new_priv, new_pub = keypair(tmp_path, "next")
    write_policy(signed.policy, keys=[new_pub])  # consumer trusts old and new
    sign_entries(signed.reg, None, key=new_priv)
    assert verify_registry(signed.reg, trust=signed.policy).ok
    write_policy(signed.policy, keys=[signed.pub], replace=True)  # only the old key: the new signatures fail
    assert not verify_registry(signed.reg, trust=signed.policy).ok


def test_keyless_policy_writes_client_trust_config(tmp_path: Path) -> None:
    from sigstore.models import ClientTrustConfig

    from tests.conftest import SIGSTORE

    out = tmp_path / "consumer" / "trust.json"
    out.parent.mkdir()
    p = run("trust", "--identity", "https://github.com/o/r/.github/workflows/release.yml@refs/heads/main",
            "--issuer", "https://token.actions.githubusercontent.com",
            "--trusted-root", str(SIGSTORE / "trusted_root.staging.json"), "--out", str(out))
    assert p.returncode == 0, p.stderr
    cfg = out.parent / "client_trust_config.json"
    ClientTrustConfig.from_json(cfg.read_text())
    assert json.loads((out.parent / "trusted_root.json").read_text()) == json.loads((SIGSTORE / "trusted_root.staging.json").read_text())
    pol = load_policy(out)
    assert pol.identities[0].issuer == "https://token.actions.githubusercontent.com" and not pol.keys


# --------------------------------------------------------------------------- bad input: one line, exit 2, nothing written


def one_line(p: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bad_policy_not_json(signed: Signed, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "not JSON" in one_line(run("verify", "--registry", str(signed.reg), "--trust", str(bad)))
    with pytest.raises(InputError):
        registry.load("dists_vgg16", signed.reg, trust=bad)
    bad.write_text(json.dumps({"format": "tinyreg-trust-policy", "version": 1, "keys": [{"public_key": "nope"}]}))
    assert "not a PEM public key" in one_line(run("verify", "--registry", str(signed.reg), "--trust", str(bad)))
    assert not (state_dir() / STATE_NAME).exists()


def test_bad_key_not_pem(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("hello")
    out = tmp_path / "trust.json"
    assert "not a PEM public key" in one_line(run("trust", "--key", str(key), "--out", str(out)))
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]


@pytest.mark.slow
def test_bad_state_dir(signed: Signed, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    before = _tree(signed.root)
    for state in (blocker, blocker / "state"):
        line = one_line(run("verify", "--registry", str(signed.reg), "--trust", str(signed.policy), env={"TINYREG_STATE_DIR": str(state)}))
        assert "state dir" in line
    os.environ["TINYREG_STATE_DIR"] = str(blocker / "state")
    with pytest.raises(InputError, match="state dir"):
        registry.load("dists_vgg16", signed.reg, trust=signed.policy)
    assert _tree(signed.root) == before and blocker.read_text() == "x"


@pytest.mark.slow
def test_bad_snapshot_without_version(signed: Signed) -> None:
    doc = signed.doc()
    del doc["snapshot"]["version"]
    signed.write_doc(doc)
    before = _tree(signed.root)
    assert "snapshot" in one_line(run("sign", "--all", "--key", str(signed.priv), "--registry", str(signed.reg)))
    assert "snapshot has no version" in one_line(run("verify", "--registry", str(signed.reg), "--trust", str(signed.policy)))
    # load validates the whole document first (a wrong-typed field must not crash it): the schema names the field
    with pytest.raises(InputError, match=r"snapshot has no version|snapshot: 'version' is a required property"):
        registry.load("dists_vgg16", signed.reg, trust=signed.policy)
    assert _tree(signed.root) == before


def test_keyless_policy_verifies_real_dsse_bundle(tmp_path: Path) -> None:
    """A keyless anchor accepts a genuine Sigstore DSSE bundle of its identity and nobody else's."""
    from tests.conftest import SIGSTORE

    _, bundle, _, identity, issuer = SIGSTORE_FIXTURES[3]
    pol = tmp_path / "trust.json"
    root = SIGSTORE / "trusted_root.staging.json"
    write_policy(pol, identity=identity, issuer=issuer, trusted_root=root)
    data = (SIGSTORE / bundle).read_bytes()
    ptype, payload = load_policy(pol).verify_dsse(data, bundle)
    assert ptype == "application/vnd.in-toto+json" and json.loads(payload)["subject"]
    write_policy(pol, identity="mallory@example.com", issuer=issuer, trusted_root=root, replace=True)
    with pytest.raises(SignatureError, match="none of the identities"):
        load_policy(pol).verify_dsse(data, bundle)
    _, pub = keypair(tmp_path, "k")
    write_policy(pol, keys=[pub], replace=True)
    with pytest.raises(SignatureError, match="trusts no identities"):
        load_policy(pol).verify_dsse(data, bundle)


def test_external_data_is_signed_from_the_graph(reg_path: Path, tmp_path: Path) -> None:
    """External data is a subject because the graph names it, not because files[] lists it."""
    import base64

    import numpy as np

    from tests.factories import add_external_data_entry

    add_external_data_entry(reg_path)
    priv, pub = keypair(tmp_path, "k")
    policy = tmp_path / "trust.json"
    write_policy(policy, keys=[pub])
    sign_entries(reg_path, None, key=priv)
    bundle = json.loads((reg_path.parent / "ext.onnx.sigstore.json").read_text())
    st = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert {f["path"]: f["role"] for f in st["predicate"]["files"]}["ext.onnx.data"] == "external_data"
    assert "ext.onnx.data" in {s["name"] for s in st["subject"]}
    s = Signed(reg_path, priv, pub, policy)
    (reg_path.parent / "ext.onnx.data").write_bytes(np.full((1, 4), 9, np.float32).tobytes())
    pin_all(s)
    caught(s, "ext.onnx.data changed since it was signed", ("fields changed since signing", "files"), entry="ext")


def test_policy_file_inside_the_registry_folder_vouches_for_nothing(tmp_path: Path) -> None:
    """A CI job points ``--trust`` / ``TINYREG_TRUST`` at a policy kept in the registry folder. A pull request
    re-signs the folder with its own key and rewrites that policy to trust it: verify and load must refuse a
    policy that lies in the folder it is to judge (the consumer's policy lives outside what the PR edits)."""
    s = make_signed(tmp_path)
    attacker = tmp_path / "attacker"
    attacker.mkdir()
    priv, pub = keypair(attacker, "mallory")
    inside = s.root / "trust.json"
    write_policy(inside, keys=[pub])
    sign_entries(s.reg, None, key=priv)
    for policy in (inside, s.root / ".." / "tiny" / "trust.json"):
        report = verify_registry(s.reg, trust=policy)
        assert not report.ok and any("inside the registry folder" in f.message for f in report.errors), report.errors
        with pytest.raises(SignatureError, match="inside the registry folder"):
            registry.load("ssim_luma", s.reg, trust=policy)


def test_verify_checks_the_snapshot_against_the_bundle_bytes_it_verifies(signed: Signed, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack: between verify's pin check and its signature check, a writer in the folder swaps the bundle for
    another validly signed one (the same entry re-signed). The snapshot digest verify checks must be the digest of the
    bytes whose signature it verifies; it was the digest of the earlier read, so the swapped bundle passed."""
    from registry._internal import safeio

    other = tmp_path / "other"
    shutil.copytree(signed.root, other)
    sign_entries(other / "registry.json", "dists_vgg16", key=signed.priv)
    rel = "dists_vgg16.onnx.sigstore.json"
    swapped = (other / rel).read_bytes()
    assert swapped != (signed.root / rel).read_bytes()
    opens = []
    real = safeio.open_fd

    def swapping(path: object, **kw: object) -> tuple[int, object]:
        if Path(str(path)).name == rel:
            opens.append(path)
            if len(opens) == 2:  # the first read was the pin check's
                (signed.root / rel).write_bytes(swapped)
        return real(path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(safeio, "open_fd", swapping)
    report = verify_registry(signed.reg, trust=signed.policy)
    assert len(opens) == 2
    assert not report.ok and any(rel in f.message for f in report.errors if f.check == "snapshot"), report.errors
