from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InputError, RegistryNotFound, SchemaError, SmokeOverwriteError, UsageError
from registry.store.document import (
    dumps_registry,
    find_registry,
    init_registry,
    merge_entry,
    parse_registry_bytes,
    read_registry,
    transaction,
)


def test_find_registry_like_git(tmp_path: Path) -> None:
    reg = init_registry(tmp_path / "model" / "tiny")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_registry(start=deep) == reg
    assert find_registry(start=tmp_path) == reg
    assert find_registry(start=reg.parent) == reg  # registry.json in the folder itself
    assert find_registry(tmp_path / "model" / "tiny") == reg  # explicit folder
    with pytest.raises(RegistryNotFound):
        find_registry(tmp_path / "nope.json")


def test_find_registry_none(tmp_path: Path) -> None:
    from registry.cli._errors import with_hint

    with pytest.raises(RegistryNotFound, match=r"or a parent$") as e:
        find_registry(start=tmp_path)
    # the CLI's words, not the library's
    assert with_hint(e.value).endswith("(pass --registry PATH, set TINYREG_REGISTRY, or run 'tinyreg init')")


def test_init_refuses_existing(tmp_path: Path) -> None:
    init_registry(tmp_path)
    with pytest.raises(UsageError, match="already exists"):
        init_registry(tmp_path)


def test_dumps_is_sorted_and_stable() -> None:
    doc = {"schema_version": 2, "models": [{"id": "b", "z": 1, "a": 2}, {"id": "a"}]}
    out = dumps_registry(doc)
    assert out == dumps_registry(json.loads(out))
    parsed = json.loads(out)
    assert [m["id"] for m in parsed["models"]] == ["a", "b"]
    # id, onnx, sigstore_bundle lead (the VMAFx loader's text scan, tests/compat), the rest sorted
    assert list(parsed["models"][1]) == ["id", "a", "z"]
    assert out.endswith(b"\n")


def test_merge_keeps_unknown_fields_and_deletes_none(reg_path: Path) -> None:
    with transaction(reg_path) as reg:
        reg.get("dists_vgg16")["x_team_field"] = {"owner": "qa"}
    with transaction(reg_path) as reg:
        merge_entry(reg, {"id": "dists_vgg16", "notes": "changed", "description": None}, force=False)
    e = read_registry(reg_path).get("dists_vgg16")
    assert e["x_team_field"] == {"owner": "qa"}
    assert e["notes"] == "changed"
    assert "description" not in e
    assert e["sha256"]  # untouched


def test_smoke_does_not_replace_real(reg_path: Path) -> None:
    with transaction(reg_path) as reg:
        reg.get("dists_vgg16")["smoke"] = False
        reg.get("dists_vgg16")["provenance"] = {"exporter": "x", "tools": {}}
    before = reg_path.read_bytes()
    with pytest.raises(SmokeOverwriteError), transaction(reg_path) as reg:
        merge_entry(reg, {"id": "dists_vgg16", "smoke": True})
    assert reg_path.read_bytes() == before


def test_invalid_result_is_not_written(reg_path: Path) -> None:
    before = reg_path.read_bytes()
    with pytest.raises(SchemaError), transaction(reg_path) as reg:
        reg.get("dists_vgg16")["license"] = ""
    assert reg_path.read_bytes() == before


def test_exception_in_body_writes_nothing(reg_path: Path) -> None:
    before = reg_path.read_bytes()
    with pytest.raises(RuntimeError), transaction(reg_path) as reg:
        reg.get("dists_vgg16")["notes"] = "x"
        raise RuntimeError("boom")
    assert reg_path.read_bytes() == before


@pytest.mark.parametrize("data", [b"{", b"[]", b"\xff\xfe", b'{"a": }'])
def test_malformed(data: bytes) -> None:
    with pytest.raises(InputError):
        parse_registry_bytes(data, "r.json")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_parser_never_crashes(data: bytes) -> None:
    try:
        doc = parse_registry_bytes(data, "r.json")
    except InputError:
        return
    assert isinstance(doc, dict)


def _writer(path: str, tag: str, n: int) -> None:
    for i in range(n):
        with transaction(Path(path)) as reg:
            e = reg.get("dists_vgg16")
            e[f"x_{tag}_{i}"] = i


def test_concurrent_writers_lose_nothing(reg_path: Path) -> None:
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(reg_path), t, 15)) for t in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    e = read_registry(reg_path).get("dists_vgg16")
    for t in ("a", "b", "c"):
        for i in range(15):
            assert e[f"x_{t}_{i}"] == i


@pytest.mark.slow
def test_killed_writer_leaves_old_or_new(reg_path: Path) -> None:
    """SIGKILL a writer loop at arbitrary moments; the file always parses and validates."""
    from registry.store.schema import schema_errors

    script = (
        "import sys; from pathlib import Path; from registry.store.document import transaction\n"
        "i = 0\n"
        "while True:\n"
        "    with transaction(Path(sys.argv[1])) as reg:\n"
        "        reg.get('dists_vgg16')['notes'] = 'n' * (i % 5000)\n"
        "    i += 1\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    original = json.loads(reg_path.read_bytes())
    old_notes = original["models"][0]["notes"]

    def without_notes(d: dict[str, object]) -> dict[str, object]:
        return {**d, "models": [{k: v for k, v in m.items() if k != "notes"} for m in d["models"]]}  # type: ignore[attr-defined]

    for delay in (0.3, 0.45, 0.6, 0.75, 0.9):
        proc = subprocess.Popen([sys.executable, "-c", script, str(reg_path)], env=env)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        doc = json.loads(reg_path.read_bytes())
        assert schema_errors(doc, "registry") == []
        # old or new, nothing else: every other field as it was, notes either the original or one the writer wrote whole
        assert without_notes(doc) == without_notes(original)
        notes = doc["models"][0].get("notes", "")
        assert notes == old_notes or set(notes) <= {"n"}
    leftovers = [p for p in reg_path.parent.iterdir() if p.name.endswith(".tmp")]
    # a temp file may survive a SIGKILL, but the registry itself is never torn
    assert all(p.name.startswith(".registry.json.") for p in leftovers)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.dictionaries(st.sampled_from(["a", "b", "x_extra", "notes"]), _json, max_size=4), max_size=5),
    update=st.dictionaries(st.sampled_from(["a", "b", "notes"]), _json, max_size=3),
)
def test_merge_and_dump_properties(rows: list[dict[str, object]], update: dict[str, object]) -> None:
    from registry.store.document import Registry

    doc = {"schema_version": 2, "models": [{**r, "id": f"m{i}"} for i, r in enumerate(rows)]}
    reg = Registry(Path("unused/registry.json"), json.loads(json.dumps(doc)))
    target = f"m{len(rows) // 2}" if rows else "new"
    old = dict(reg.find(target) or {})
    merged = merge_entry(reg, {"id": target, **update})
    for k, v in old.items():  # fields the update does not mention survive untouched
        if k not in update:
            assert merged[k] == v
    for k, v in update.items():
        assert (k not in merged) if v is None else merged[k] == v
    out = dumps_registry(reg.doc)
    assert dumps_registry(json.loads(out)) == out  # stable
    ids = [m["id"] for m in json.loads(out)["models"]]
    assert ids == sorted(ids) and len(ids) == len(set(ids))


def test_readers_wait_for_a_writer(reg_path: Path) -> None:
    import threading

    from registry._internal.atomic import file_lock
    from registry.verify import verify_registry

    held = threading.Event()

    def writer() -> None:
        with file_lock(reg_path):
            held.set()
            time.sleep(0.6)

    t = threading.Thread(target=writer)
    t.start()
    held.wait(5)
    start = time.perf_counter()
    assert verify_registry(reg_path).ok
    assert time.perf_counter() - start >= 0.4  # verify waited for the writer's lock
    t.join()
