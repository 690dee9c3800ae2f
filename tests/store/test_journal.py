"""Readers never write; only a writer finishes an update, and only one this machine's writer left.

The attacker can edit the registry folder (a pull request can commit a complete, well-formed
``.tinyreg-update/``), and in some tests the environment (``TINYREG_STATE_DIR``). Every reader,
with and without a trust policy, must leave the folder byte for byte as it found it; a writer
must refuse (or, asked to, discard) any journal not bound to the registry.json it replaces and
to a record in this user's state dir.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import registry
from registry.errors import Error
from registry.store import commit as commit_mod
from registry.store.commit import PendingUpdate, UnboundJournal, record_path, recover_folder
from registry.store.document import read_registry
from registry.store.entries import update_entry
from registry.store.layout import STAGING_DIR
from registry.verify import verify_registry
from tests.factories import Signed, make_signed, snapshot
from tests.factories import invoke_cli as cli


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plant_journal(reg: Path, *, pre: str | None = None) -> bytes:
    """A complete, well-formed (current format) journal that swaps dists_vgg16's model for lpips_vgg16's bytes."""
    root = reg.parent
    evil = (root / "lpips_vgg16.onnx").read_bytes()
    doc = json.loads(reg.read_text())
    row = next(m for m in doc["models"] if m["id"] == "dists_vgg16")
    row["sha256"] = _sha(evil)
    for f in row.get("files") or []:
        if f.get("path") == "dists_vgg16.onnx":
            f.update(sha256=_sha(evil), size=len(evil))
    new_reg = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    stage = root / STAGING_DIR
    stage.mkdir()
    (stage / "0").write_bytes(evil)
    (stage / "registry.json.new").write_bytes(new_reg)
    journal = {"tinyreg_update": 2, "nonce": "00" * 16, "pre_registry_sha256": pre or _sha(reg.read_bytes()),
               "registry_sha256": _sha(new_reg), "files": [{"path": "dists_vgg16.onnx", "staged": "0", "sha256": _sha(evil)}]}
    data = json.dumps(journal, sort_keys=True).encode()
    (stage / "journal.json").write_bytes(data)
    return data


def forge_record(reg: Path, journal: bytes, mode: int) -> None:
    """What an attacker writes where the state record lives: a well-formed record vouching for ``journal``."""
    rec = record_path(reg.parent)
    rec.parent.mkdir(parents=True, exist_ok=True)
    rec.write_text(json.dumps({"format": "tinyreg-update-record", "version": 1, "root": str(reg.parent.resolve()),
                               "pre_registry_sha256": _sha(reg.read_bytes()), "journal_sha256": _sha(journal)}))
    rec.chmod(mode)


def png(path: Path, seed: int) -> Path:
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    return make_signed(tmp_path)


def test_planted_journal_no_reader_applies_it_with_or_without_a_policy(signed: Signed, tmp_path: Path) -> None:
    reg, root, policy = signed.reg, signed.root, signed.policy
    plant_journal(reg)
    before = snapshot(root)
    a, b = png(tmp_path / "a.png", 1), png(tmp_path / "b.png", 2)
    readers: list[tuple[list[str], set[int]]] = [
        (["verify", "--registry", str(reg)], {1}),
        (["verify", "--registry", str(reg), "--trust", str(policy)], {1}),
        (["pin", "--all", "--check", "--registry", str(reg)], {1}),
        (["list", "--registry", str(reg)], {0}),
        (["show", "dists_vgg16", "--registry", str(reg)], {0}),
        (["check-ops", "dists_vgg16", "--registry", str(reg)], {0, 1}),
        (["score", "ssim_luma", str(a), str(b), "--registry", str(reg)], {1}),
        (["score", "ssim_luma", str(a), str(b), "--registry", str(reg), "--trust", str(policy)], {1}),
    ]
    for args, codes in readers:
        code, out, err = cli(*args)
        assert code in codes, (args, code, out, err)
        assert snapshot(root) == before, f"{args}: a reader changed the folder"
        if args[0] in ("verify", "pin", "score"):
            assert "tinyreg recover" in out + err, (args, out, err)
        assert "all pins up to date" not in out
    for trust in (None, policy):
        with pytest.raises(PendingUpdate, match=r"\.tinyreg-update.*tinyreg recover"):
            registry.load("dists_vgg16", reg, trust=trust)
        assert snapshot(root) == before
    report = verify_registry(reg)
    assert [f.check for f in report.errors] == ["journal"]


def test_planted_journal_a_writer_refuses_then_discards_on_request(signed: Signed) -> None:
    reg, root = signed.reg, signed.root
    plant_journal(reg)
    before = snapshot(root)
    with pytest.raises(UnboundJournal, match="no writer of this user on this machine recorded it"):
        update_entry(reg, "dists_vgg16", {"notes": "x"})  # any writer
    code, _, err = cli("recover", "--registry", str(reg))
    assert code == 1 and "--discard" in err and snapshot(root) == before
    code, out, _ = cli("recover", "--discard", "--registry", str(reg))
    assert code == 0 and "discarded" in out
    assert not (root / STAGING_DIR).exists()
    assert verify_registry(reg, trust=signed.policy).ok  # the signed bytes stand


def test_planted_state_record_inside_the_folder_is_not_believed(signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attacker also controls TINYREG_STATE_DIR (directly, or a symlink to a folder in the registry) and
    plants a record that matches the planted journal: a state dir in the registry folder vouches for nothing."""
    reg, root = signed.reg, signed.root
    data = plant_journal(reg)
    planted = root / "state"
    for how in ("direct", "symlink"):
        state = planted if how == "direct" else root.parent / "state-link"
        if how == "symlink":
            state.symlink_to(planted)
        monkeypatch.setenv("TINYREG_STATE_DIR", str(state))
        forge_record(reg, data, 0o600)
        before = snapshot(root)
        with pytest.raises(UnboundJournal, match="inside the registry folder"):
            recover_folder(reg)
        assert snapshot(root) == before


def _interrupted(reg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that dies right after its commit point (journal and record written, nothing landed)."""

    class Killed(BaseException):
        pass

    def die(*a: object, **k: object) -> None:
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(commit_mod, "_apply", die)
        with pytest.raises(Killed):
            update_entry(reg, "ssim_luma", {"notes": "interrupted"})
    assert (reg.parent / STAGING_DIR / "journal.json").exists()


def test_own_interrupted_update_is_completed_by_the_next_writer(reg_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.export.smoke import add_smoke

    add_smoke(reg_path, "ssim")
    _interrupted(reg_path, monkeypatch)
    assert record_path(reg_path.parent).exists()
    before = snapshot(reg_path.parent)
    with pytest.raises(PendingUpdate):
        registry.load("ssim_luma", reg_path)
    assert snapshot(reg_path.parent) == before
    with pytest.warns(commit_mod.RecoveryWarning, match="completed an update"):
        update_entry(reg_path, "dists_vgg16", {"notes": "next"})
    doc = read_registry(reg_path)
    assert doc.get("ssim_luma")["notes"] == "interrupted" and doc.get("dists_vgg16")["notes"] == "next"
    assert not record_path(reg_path.parent).exists() and not verify_registry(reg_path).errors


def test_journal_for_another_pre_image_is_refused(reg_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own journal, but registry.json changed underneath it (an edit, a checkout): never applied."""
    from registry.export.smoke import add_smoke

    add_smoke(reg_path, "ssim")
    _interrupted(reg_path, monkeypatch)
    doc = json.loads(reg_path.read_text())
    doc["models"][0]["notes"] = "edited by hand"
    reg_path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    before = snapshot(reg_path.parent)
    with pytest.raises(UnboundJournal, match=r"replaces a registry\.json"):
        recover_folder(reg_path)
    assert snapshot(reg_path.parent) == before


def test_tampered_staged_file_or_journal_is_refused(reg_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.export.smoke import add_smoke

    add_smoke(reg_path, "ssim")
    _interrupted(reg_path, monkeypatch)
    stage = reg_path.parent / STAGING_DIR
    staged = sorted(p for p in stage.iterdir() if p.name.isdigit())[0]
    good = staged.read_bytes()
    staged.write_bytes(good + b"x")
    with pytest.raises(UnboundJournal, match="staged bytes"):
        recover_folder(reg_path)
    staged.write_bytes(good)
    journal = stage / "journal.json"
    journal.write_bytes(journal.read_bytes().replace(b'"nonce": "', b'"nonce": "0'))
    with pytest.raises(UnboundJournal, match="not the journal this machine's writer recorded"):
        recover_folder(reg_path)


def test_journal_copied_into_another_folder_is_refused(reg_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.export.smoke import add_smoke

    add_smoke(reg_path, "ssim")
    other = tmp_path / "other"
    shutil.copytree(reg_path.parent, other)
    _interrupted(reg_path, monkeypatch)
    shutil.copytree(reg_path.parent / STAGING_DIR, other / STAGING_DIR)
    with pytest.raises(UnboundJournal, match="no writer of this user"):
        recover_folder(other / "registry.json")


def test_under_a_policy_the_post_image_must_verify_before_anything_lands(signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own interrupted update, but what it lands is unsigned: with TINYREG_TRUST set, the writer refuses it."""
    reg, root = signed.reg, signed.root
    _interrupted(reg, monkeypatch)
    before = snapshot(root)
    monkeypatch.setenv("TINYREG_TRUST", str(signed.policy))
    with pytest.raises(UnboundJournal, match="does not verify under the trust policy"):
        update_entry(reg, "dists_vgg16", {"notes": "x"})
    assert snapshot(root) == before
    monkeypatch.delenv("TINYREG_TRUST")
    assert recover_folder(reg) is not None  # without a policy the machine's own update completes
    assert read_registry(reg).get("ssim_luma")["notes"] == "interrupted"


def test_empty_trust_variable_is_an_error_never_no_policy(signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.errors import InputError

    for value in ("", "  "):
        monkeypatch.setenv("TINYREG_TRUST", value)
        with pytest.raises(InputError, match="TINYREG_TRUST is set but empty"):
            registry.load("ssim_luma", signed.reg)
        with pytest.raises(InputError, match="TINYREG_TRUST is set but empty"):
            verify_registry(signed.reg)
        code, _, err = cli("verify", "--registry", str(signed.reg))
        assert code == 2 and "empty" in err, err


def test_state_dir_not_writable_refuses_before_anything_is_staged(reg_path: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("TINYREG_STATE_DIR", str(blocker))
    before = snapshot(reg_path.parent)
    with pytest.raises(Error) as caught:
        update_entry(reg_path, "dists_vgg16", {"notes": "x"})
    assert caught.value.exit_code == 2 and "state dir" in caught.value.diagnostics()
    assert snapshot(reg_path.parent) == before



def test_planted_state_record_in_the_same_git_checkout_is_not_believed(
    signed: Signed, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CI job keeps its state dir in the checkout (``TINYREG_STATE_DIR=.tinyreg-state``, beside the registry
    folder, not in it). A pull request commits a journal AND a matching record there (git checks files out
    as this user, mode 0644): a writer must not believe a record that the pull request could write."""
    import subprocess

    reg, root = signed.reg, signed.root
    top = root.parent.parent  # the repository: top/model/tiny/registry.json
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    data = plant_journal(reg)
    monkeypatch.chdir(top)
    monkeypatch.setenv("TINYREG_STATE_DIR", ".tinyreg-state")  # relative: inside the checkout
    forge_record(reg, data, 0o644)
    before = snapshot(root)
    with pytest.raises(UnboundJournal, match="git work tree"):
        update_entry(reg, "ssim_luma", {"notes": "a writer"})  # any writer
    assert snapshot(root) == before
    code, _, err = cli("recover", "--registry", str(reg))
    assert code == 1 and snapshot(root) == before, err
    shutil.rmtree(root / STAGING_DIR)
    # and a writer refuses to keep its own record there (bad input, exit 2, before anything is staged)
    before = snapshot(root)
    code, _, err = cli("pin", "--all", "--registry", str(reg))
    assert code == 2 and "git work tree" in err, err
    assert snapshot(root) == before


@pytest.mark.parametrize("kind", ["fifo", "symlink", "oversize", "directory"])
def test_planted_journal_that_is_no_regular_file_is_one_line_never_a_hang(reg_path: Path, tmp_path: Path, kind: str) -> None:
    """A journal planted as a named pipe, a symbolic link, a huge file or a folder: the writer refuses it in one line
    (the safe reader: non-blocking open, no symlink, size capped before and while reading) and changes nothing."""
    import os

    root = reg_path.parent
    stage = root / STAGING_DIR
    stage.mkdir()
    j = stage / "journal.json"
    if kind == "fifo":
        os.mkfifo(j)
    elif kind == "symlink":
        target = tmp_path / "elsewhere.json"
        target.write_text('{"tinyreg_update": 2}')
        j.symlink_to(target)
    elif kind == "oversize":
        with open(j, "wb") as fh:
            fh.truncate((16 << 20) + 1)  # one byte past the cap; sparse, so no disk
    else:
        j.mkdir()
    before = snapshot(root)
    with pytest.raises(UnboundJournal) as err:
        update_entry(reg_path, "dists_vgg16", {"notes": "x"})
    assert "\n" not in str(err.value) and "journal" in str(err.value), err.value
    assert snapshot(root) == before
