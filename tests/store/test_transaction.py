"""Updates are whole or not at all: staged files, one commit, roll forward after a kill, locks for everyone."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registry.errors import ConflictError, SchemaError, UsageError
from registry.store.commit import PendingUpdate, UnboundJournal, recover_folder
from registry.store.document import dumps_registry, new_registry_doc, read_registry, transaction
from registry.store.entries import write_entry
from registry.store.layout import STAGING_DIR
from registry.verify import verify_registry
from tests import onnx_factory as f
from tests.factories import snapshot

REPO = Path(__file__).resolve().parents[2]
IO = {
    "inputs": [{"name": "x", "dtype": "float32", "shape": [1, 4]}],
    "outputs": [{"name": "y", "dtype": "float32", "shape": [1, 4]}],
}


def _fields(reg_path: Path, eid: str, **extra: object) -> dict[str, object]:
    fields = dict(read_registry(reg_path).get("dists_vgg16"))
    fields.update({"id": eid, "onnx": f"{eid}.onnx", "files": None, "sha256": "0" * 64, "io": IO, **extra})
    return fields


def quantised_entry(reg_path: Path) -> None:
    """An entry with an int8 sibling (hand-made: quantize is slow), so replacing its model removes files too."""
    fields = _fields(reg_path, "q", quant_mode="dynamic", int8_sha256="0" * 64)
    write_entry(reg_path, fields, {"q.onnx": f.tiny(opset=17).SerializeToString(),
                                   "q.int8.onnx": f.tiny(opset=18).SerializeToString()})


def replace_model(reg_path: Path) -> None:
    """The update under test: a new fp32 model (new bytes, new opset) -> onnx, sidecar, card, registry, int8 removed."""
    write_entry(reg_path, _fields(reg_path, "q"), {"q.onnx": f.tiny(opset=18).SerializeToString()})


def _killed_after(k: int, update: Callable[[Path], None], reg_path: Path) -> bool:
    """Run ``update`` in a forked child that SIGKILLs itself right after its k-th landing step; True if it finished."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            count = [0]

            def counted(fn: Callable[..., object]) -> Callable[..., object]:
                def wrapper(*a: object, **kw: object) -> object:
                    out = fn(*a, **kw)
                    count[0] += 1
                    if count[0] == k:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return out
                return wrapper

            # every call that makes a file or its contents land: a write made durable, a rename, a removal
            for name in ("fsync", "replace", "rename", "unlink", "rmdir"):
                setattr(os, name, counted(getattr(os, name)))
            update(reg_path)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status)


@pytest.mark.slow
def test_writer_killed_after_each_step_leaves_old_or_new(reg_path: Path, tmp_path: Path) -> None:
    quantised_entry(reg_path)
    folder = reg_path.parent
    old = snapshot(folder)
    new_copy = tmp_path / "new"
    shutil.copytree(folder, new_copy)
    replace_model(new_copy / "registry.json")
    new = snapshot(new_copy)
    assert new != old and "q.int8.onnx" in old and "q.int8.onnx" not in new
    pristine = tmp_path / "pristine"
    shutil.copytree(folder, pristine)
    seen = {"old": 0, "new": 0}
    for k in range(1, 200):
        shutil.rmtree(folder)
        shutil.copytree(pristine, folder)
        finished = _killed_after(k, replace_model, reg_path)
        left = snapshot(folder)
        report = verify_registry(reg_path)  # a reader reports what the killed writer left and changes nothing
        assert snapshot(folder) == left, f"killed after step {k}: verify changed the folder"
        if (folder / STAGING_DIR).exists():
            assert "journal" in [x.check for x in report.errors], (k, report.errors)
        recover_folder(reg_path)  # the next writer completes or discards it
        after = snapshot(folder)
        assert after in (old, new), f"killed after step {k}: a mix of old and new ({sorted(set(after) ^ set(old))})"
        seen["old" if after == old else "new"] += 1
        assert not verify_registry(reg_path).errors, k
        if finished:
            break
    else:
        pytest.fail("the writer never finished")
    assert seen["old"] >= 3 and seen["new"] >= 3, seen  # killed both before and after its commit point


def test_interrupted_update_is_refused_by_readers_and_completed_by_a_writer(reg_path: Path, tmp_path: Path) -> None:
    import registry

    quantised_entry(reg_path)
    folder = reg_path.parent
    k = 1
    while True:  # find the first kill point after the commit point
        shutil.copytree(folder, tmp_path / f"k{k}")
        finished = _killed_after(k, replace_model, tmp_path / f"k{k}" / "registry.json")
        journal = tmp_path / f"k{k}" / STAGING_DIR / "journal.json"
        if finished or journal.exists():
            break
        k += 1
    assert journal.exists()
    copy = journal.parent.parent
    left = snapshot(copy)
    r = verify_registry(copy / "registry.json")
    assert [x.check for x in r.errors] == ["journal"] and "tinyreg recover" in r.errors[0].message
    with pytest.raises(PendingUpdate, match="tinyreg recover"):
        registry.load("q", copy / "registry.json")
    assert snapshot(copy) == left  # readers never write
    found = recover_folder(copy / "registry.json")  # the writer completes it: its record is in this user's state dir
    assert found is not None and found.committed
    with pytest.warns(UserWarning):
        registry.load("q", copy / "registry.json")
    assert read_registry(copy / "registry.json").get("q")["opset"] == 18 and not (copy / STAGING_DIR).exists()


def test_refused_command_writes_nothing(reg_path: Path) -> None:
    """`tinyreg add dists --id lpips_vgg16.int8` must not overwrite another entry's int8 file."""
    from registry.export.smoke import add_smoke

    quantised_entry(reg_path)
    before = snapshot(reg_path.parent)
    with pytest.raises(SchemaError, match=r"'q\.int8' does not match"):
        add_smoke(reg_path, "dists", entry_id="q.int8")
    with pytest.raises(UsageError, match=r"registry\.json is a file of the registry itself"):
        add_smoke(reg_path, "dists", entry_id="registry")
    with pytest.raises(UsageError, match=r"q\.int8\.onnx is also a file of entry 'q'"):
        write_entry(reg_path, _fields(reg_path, "other", onnx="q.int8.onnx"), {"q.int8.onnx": f.tiny().SerializeToString()})
    assert snapshot(reg_path.parent) == before


def test_cli_refused_add_exits_2_and_writes_nothing(reg_path: Path) -> None:
    quantised_entry(reg_path)
    before = snapshot(reg_path.parent)
    p = subprocess.run([sys.executable, "-m", "registry", "add", "dists", "--id", "q.int8", "--registry", str(reg_path)],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "'q.int8'" in p.stderr, p.stderr
    assert snapshot(reg_path.parent) == before


def test_body_failure_after_staging_writes_nothing(reg_path: Path) -> None:
    before = snapshot(reg_path.parent)
    with pytest.raises(RuntimeError), transaction(reg_path) as reg:
        reg.stage("dists_vgg16.onnx", b"garbage")
        reg.get("dists_vgg16")["notes"] = "changed"
        raise RuntimeError("boom")
    assert snapshot(reg_path.parent) == before


def test_pins_see_staged_bytes(reg_path: Path) -> None:
    from registry.store.pins import compute_pins

    new = f.tiny(opset=18).SerializeToString()
    before = snapshot(reg_path.parent)
    with pytest.raises(RuntimeError), transaction(reg_path) as reg:
        reg.stage("dists_vgg16.onnx", new)
        pins = compute_pins(reg, reg.get("dists_vgg16"))
        assert pins["opset"] == 18 and pins["size"] == len(new)
        raise RuntimeError("stop before commit")
    assert snapshot(reg_path.parent) == before


def test_expect_refuses_a_changed_entry(reg_path: Path) -> None:
    old_sha = read_registry(reg_path).get("dists_vgg16")["sha256"]
    replace = _fields(reg_path, "dists_vgg16", onnx="dists_vgg16.onnx")
    write_entry(reg_path, replace, {"dists_vgg16.onnx": f.tiny(opset=18).SerializeToString()})  # someone else, meanwhile
    before = snapshot(reg_path.parent)
    with pytest.raises(ConflictError, match="changed while this command ran"):
        write_entry(reg_path, {"id": "dists_vgg16", "quant_mode": "dynamic"}, {"dists_vgg16.int8.onnx": b"x"},
                    new_artifact=False, expect={"dists_vgg16": old_sha})
    assert snapshot(reg_path.parent) == before


@pytest.mark.slow  # a real quantisation raced by a writer (~15 s)
def test_quantize_refuses_when_the_model_changed_meanwhile(reg_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """quantize reads unlocked and writes tens of seconds later; here the fp32 model is replaced in between."""
    from registry.export.smoke import add_smoke
    from registry.quant import quantize as q
    from registry.quant.gate import Gate

    real_prepare = Gate.prepare

    def prepare_then_swap(*a: object, **kw: object) -> object:
        gate = real_prepare(*a, **kw)  # type: ignore[arg-type]
        add_smoke(reg_path, "dists", opset=18, force=True)  # another process replaces the model meanwhile
        return gate

    monkeypatch.setattr(Gate, "prepare", staticmethod(prepare_then_swap))
    with pytest.raises(ConflictError, match="changed while this command ran"):
        q.quantize_entry(reg_path, "dists_vgg16", mode="dynamic")
    assert "int8_sha256" not in read_registry(reg_path).get("dists_vgg16")
    assert not (reg_path.parent / "dists_vgg16.int8.onnx").exists()


def test_no_lock_file_and_planted_symlink_is_not_followed(reg_path: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (reg_path.parent / ".registry.json.lock").symlink_to(outside)
    with transaction(reg_path) as reg:
        reg.get("dists_vgg16")["notes"] = "x"
    assert not outside.exists()
    (reg_path.parent / ".registry.json.lock").unlink()
    assert sorted(p.name for p in reg_path.parent.iterdir()) == ["dists_vgg16.json", "dists_vgg16.md", "dists_vgg16.onnx",
                                                                  "registry.json"]


def _reader(paths: list[str], current: Any, out: Any) -> None:
    bad: list[str] = []
    while (i := current.value) >= 0:
        r = verify_registry(Path(paths[i]))
        bad += [f"{paths[i]}: {x.message}" for x in r.errors]
    out.put(bad)


@pytest.mark.slow  # processes racing (~15 s)
def test_readers_racing_the_very_first_writer(tmp_path: Path) -> None:
    """Registries nobody wrote with tinyreg yet (no lock file ever made): readers never see a half-done first update."""
    import multiprocessing as mp

    from registry.export.smoke import add_smoke

    paths = []
    for i in range(15):
        folder = tmp_path / f"r{i}"
        folder.mkdir()
        (folder / "registry.json").write_bytes(dumps_registry(new_registry_doc()))
        paths.append(str(folder / "registry.json"))
    ctx = mp.get_context("fork")
    current, out = ctx.Value("i", 0), ctx.Queue()
    readers = [ctx.Process(target=_reader, args=(paths, current, out)) for _ in range(3)]
    for r in readers:
        r.start()
    for i, p in enumerate(paths):  # each registry's very first writer, with three readers on that registry
        current.value = i
        time.sleep(0.2)
        add_smoke(Path(p), "dists")
    current.value = -1
    bad = [b for _ in readers for b in out.get(timeout=120)]
    for r in readers:
        r.join(30)
    assert bad == []
    assert all(verify_registry(Path(p)).ok for p in paths)


def test_before_commit_hook_sees_the_final_update_and_may_stage_one_more_file(reg_path: Path) -> None:
    """Room for a whole-folder signature: a hook sees every staged file (orphan removals included) and the
    new registry.json bytes, and what it stages lands in the same update."""
    from registry.store.document import Registry
    from registry.store.layout import SNAPSHOT_NAME

    seen: dict[str, object] = {}

    def hook(r: Registry, registry_bytes: bytes) -> None:
        seen.update(files=sorted(r.staged), registry=json.loads(registry_bytes))
        r.stage(SNAPSHOT_NAME, b'{"signed": "' + str(len(registry_bytes)).encode() + b'"}')

    with transaction(reg_path) as reg:
        reg.get("dists_vgg16")["notes"] = "hooked"
        reg.stage("dists_vgg16.md", b"card\n")
        reg.before_commit.append(hook)
    assert seen["files"] == ["dists_vgg16.md"]
    assert seen["registry"]["models"][0]["notes"] == "hooked"  # type: ignore[index]
    assert (reg_path.parent / SNAPSHOT_NAME).read_bytes() == b'{"signed": "' + str(reg_path.stat().st_size).encode() + b'"}'
    assert not (reg_path.parent / STAGING_DIR).exists()


def test_a_folder_in_the_way_is_refused_before_anything_lands(reg_path: Path) -> None:
    (reg_path.parent / "dists_vgg16.md").unlink()
    (reg_path.parent / "dists_vgg16.md").mkdir()
    before = snapshot(reg_path.parent)
    with pytest.raises(UsageError, match="a folder is in the way"), transaction(reg_path) as reg:
        reg.get("dists_vgg16")["notes"] = "x"
        reg.stage("dists_vgg16.onnx", b"new")
        reg.stage("dists_vgg16.md", b"card")
    assert snapshot(reg_path.parent) == before and not (reg_path.parent / STAGING_DIR).exists()


@pytest.mark.parametrize(("staged", "target"), [("../../outside.txt", "stolen.txt"), ("/etc/hostname", "stolen.txt"),
                                               ("0/../../../outside.txt", "stolen.txt"), ("link", "stolen.txt"),
                                               ("0", ".git/hooks/pre-commit"), ("0", "sub/.hidden")])
def test_planted_journal_cannot_move_files_from_outside_the_registry(reg_path: Path, tmp_path: Path, staged: str,
                                                                     target: str) -> None:
    """An attacker commits a `.tinyreg-update/` journal whose staged name points outside, or whose target is a
    path tinyreg never writes (a git hook where the registry is a repository root): nothing moves."""
    folder = reg_path.parent
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    stage = folder / STAGING_DIR
    stage.mkdir()
    if staged == "link":
        (stage / "0").symlink_to(outside)
        staged = "0"
    elif staged == "0":
        (stage / "0").write_text("#!/bin/sh\necho pwned\n")
    before = reg_path.read_bytes()
    journal = {"tinyreg_update": 1, "registry_sha256": "0" * 64,
               "files": [{"path": target, "staged": staged, "sha256": "0" * 64}]}
    (stage / "journal.json").write_text(json.dumps(journal))
    left = snapshot(folder)
    report = verify_registry(reg_path)
    assert not report.ok and [f.check for f in report.errors] == ["journal"]
    assert snapshot(folder) == left
    with pytest.raises(UnboundJournal, match="refusing to apply it"):
        recover_folder(reg_path)  # a writer: not bound to this machine's writer, never applied
    assert snapshot(folder) == left
    recover_folder(reg_path, discard=True)
    assert outside.read_text() == "secret" and not (folder / target).exists() and not stage.exists()
    assert reg_path.read_bytes() == before
