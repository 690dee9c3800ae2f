"""A mutation fuzzer over every file format tinyreg reads (issue 16).

Each format has seeds (valid files made here, by tinyreg itself or by the libraries it reads)
and a target: the library function a command runs on that file, called through the CLI's
error boundary (``registry.cli._errors.command``), so the exit code and stderr are what a user
would see. Mutations: truncation, bit flips, inserted/removed/duplicated chunks, huge numbers,
for JSON wrong types, deep nesting and huge strings, and special files in place of the file
(a FIFO with no writer, a symlink to /dev/zero, a directory, a socket, an 8 GiB sparse file).

The property checked on every case:

* the exit code is 0, 1 or 2 (never 70, never an escaping exception);
* a failure prints exactly one stderr line (``tinyreg: ...``);
* no case runs past ``HANG_S`` seconds (an interval timer interrupts it);
* nothing changes outside the case's own output file, and the registry folder is unchanged.

``make test`` runs every format for a short, fixed-seed budget (tests/fuzz/test_fuzz.py);
``make fuzz`` runs ``python -m tests.fuzz_harness`` for ``TINYREG_FUZZ_SECONDS`` (default 1800)
spread over the formats, and prints what it ran. Failures are written to ``--crashes DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import signal
import socket
import stat
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.factories import keypair

HANG_S = 20.0
SPECIALS = ("fifo", "devzero", "directory", "socket", "sparse")


class Hang(BaseException):
    """Raised by the interval timer in a case that ran past HANG_S (a BaseException: no target catches it)."""


@dataclass
class Format:
    name: str
    rel: str  # the file the case writes, relative to the case folder
    kind: str  # "json", "text" or "binary": which structural mutations apply
    setup: Callable[[Path], list[bytes]]  # builds the case folder, returns seed contents for ``rel``
    target: Callable[[Path], None]  # reads it (the case folder is the argument)
    outputs: tuple[str, ...] = ()  # files (relative) the target may write: the user's output
    registry: str | None = None  # folder (relative) that must be unchanged
    pinned: bool = False  # ``rel`` is pinned by sha256: any change of it must be a finding (exit 1 or 2), never exit 0


@dataclass
class Stats:
    cases: int = 0
    codes: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ---------------------------------------------------------------- mutations


def _json_mutate(rng: random.Random, data: bytes) -> bytes | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    paths: list[tuple[Any, Any]] = []
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            paths.append((node, k))
            if isinstance(v, (dict, list)):
                stack.append(v)
    if not paths:
        return None
    parent, key = rng.choice(paths)
    op = rng.randrange(5)
    depth = rng.choice([65, 200, 5000, 100_000])
    if op == 0 and isinstance(parent, dict):
        del parent[key]
    elif op == 1 and isinstance(parent, list):
        parent.append(parent[key])
    elif op == 2:
        parent[key] = "__DEEP__"  # replaced by deep nesting below
    else:
        parent[key] = rng.choice([
            None, True, 0, -1, 2**63, -(2**70), 1e308, 1.5, "", "x" * rng.choice([1, 300, 200_000]), "../../etc/passwd",
            "/dev/zero", [], {}, [[[]]], {"a": {"b": {}}}, "\x1b[2J", "é" * 10, "0" * 64, "registry.json",
        ])
    text = json.dumps(doc).replace('"__DEEP__"', "[" * depth + "]" * depth, 1)
    return text.encode()


def _bytes_mutate(rng: random.Random, data: bytes, kind: str) -> bytes:
    b = bytearray(data)
    op = rng.randrange(8)
    if op == 0 and b:  # truncate
        del b[rng.randrange(len(b)):]
    elif op == 1 and b:  # bit flips
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif op == 2:  # insert random bytes
        i = rng.randrange(len(b) + 1)
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif op == 3 and b:  # remove a chunk
        i = rng.randrange(len(b))
        del b[i:i + rng.randint(1, 256)]
    elif op == 4 and b:  # duplicate a chunk
        i = rng.randrange(len(b))
        chunk = b[i:i + rng.randint(1, 4096)]
        b[i:i] = chunk * rng.randint(1, 4)
    elif op == 5 and b:  # a run of digits becomes a huge number
        digits = [i for i, c in enumerate(b) if 48 <= c <= 57]
        if digits:
            i = rng.choice(digits)
            b[i:i + 1] = rng.choice([b"99999999999999999999", b"-1", b"4294967296", b"0"])
    elif op == 6 and b:  # overwrite a 4-byte window with an extreme integer (binary headers: sizes, counts)
        i = rng.randrange(len(b))
        b[i:i + 4] = rng.choice([b"\xff\xff\xff\x7f", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x00\x00\x00\x80"])
    else:  # splice with itself
        if b:
            i, j = rng.randrange(len(b)), rng.randrange(len(b))
            b = b[:i] + b[j:]
    return bytes(b)


def mutate(rng: random.Random, seeds: list[bytes], kind: str) -> bytes | str:
    """Mutated bytes, or the name of a special file to put in place of the file."""
    r = rng.random()
    if r < 0.06:
        return rng.choice(SPECIALS)
    data = rng.choice(seeds)
    if kind == "json" and r < 0.45:
        out = _json_mutate(rng, data)
        if out is not None:
            return out
    for _ in range(rng.choice([1, 1, 2, 3])):
        data = _bytes_mutate(rng, data, kind)
    return data


# ---------------------------------------------------------------- checking a case


def _tree(folder: Path, skip: set[Path]) -> dict[str, str]:
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p in skip or any(s in p.parents for s in skip):
                continue
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    out[str(p.relative_to(folder))] = hashlib.sha256(fh.read()).hexdigest()
            elif not stat.S_ISDIR(st.st_mode):
                out[str(p.relative_to(folder))] = f"special {stat.S_IFMT(st.st_mode)}"
            else:
                out[str(p.relative_to(folder)) + "/"] = "dir"
    return out


def _place(path: Path, content: bytes | str, holders: list[socket.socket]) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "fifo":
        os.mkfifo(path)
    elif content == "devzero":
        path.symlink_to("/dev/zero")
    elif content == "directory":
        path.mkdir()
    elif content == "socket":
        s = socket.socket(socket.AF_UNIX)
        here = os.getcwd()
        try:  # bound by its name inside its folder: a full tmp path can exceed AF_UNIX's 108 bytes
            os.chdir(path.parent)
            s.bind(path.name)
        finally:
            os.chdir(here)
        holders.append(s)
    elif content == "sparse":
        with open(path, "wb") as fh:
            fh.truncate(8 << 30)


def _alarm(_sig: int, _frame: Any) -> None:
    raise Hang()


def run_case(fmt: Format, case_dir: Path, content: bytes | str) -> tuple[int, str]:
    """Run the target once on ``content``; returns (exit code, stderr) as the CLI boundary produced them."""
    import typer

    from registry.cli._errors import command

    holders: list[socket.socket] = []
    _place(case_dir / fmt.rel, content, holders)

    @command
    def fuzz_cmd() -> None:
        fmt.target(case_dir)

    err = io.StringIO()
    code = 0
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    # what C libraries (libtiff, FFmpeg) write to file descriptor 2 is a stderr line too
    sys.stderr.flush()
    saved_fd = os.dup(2)
    c_err = tempfile.TemporaryFile()  # noqa: SIM115 - closed after fd 2 is restored
    os.dup2(c_err.fileno(), 2)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            # a warning a library prints is a stderr line like any other (only the smoke notice of load() is expected)
            from registry.runtime.loader import SmokeModelWarning

            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=SmokeModelWarning)
            fuzz_cmd()
    except typer.Exit as exc:
        code = int(exc.exit_code or 0)
    except Hang:
        code = -1
    except BaseException as exc:  # escaped the boundary: a bug
        code = 99
        err.write(f"escaped: {type(exc).__name__}: {exc}\n")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        for s in holders:
            s.close()
    c_err.seek(0)
    native = c_err.read().decode("utf-8", "replace")
    c_err.close()
    return code, native + err.getvalue()


def check(fmt: Format, case_dir: Path, content: bytes | str, before: dict[str, str]) -> tuple[int, str | None]:
    code, err = run_case(fmt, case_dir, content)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    problem = None
    if code == -1:
        problem = f"hang: ran past {HANG_S:g} s"
    elif code not in (0, 1, 2):
        problem = f"exit {code}: {err.strip()[:400]}"
    elif code != 0 and len(lines) != 1:
        problem = f"exit {code} with {len(lines)} stderr lines: {err.strip()[:400]}"
    else:
        skip = {case_dir / fmt.rel, *(case_dir / o for o in fmt.outputs)}
        after = _tree(case_dir, skip)
        if after != before:
            changed = sorted(k for k in set(after) | set(before) if after.get(k) != before.get(k))
            problem = f"wrote outside its output or changed the registry: {changed[:5]}"
    return code, problem


def fuzz(fmt: Format, seconds: float, seed: int, work: Path, crashes: Path | None = None, max_cases: int | None = None) -> Stats:
    """Fuzz one format for ``seconds`` (or ``max_cases``) with a fixed ``seed``."""
    rng = random.Random(f"{seed}:{fmt.name}")
    pristine = work / f"{fmt.name}-pristine"
    case_dir = work / f"{fmt.name}-case"
    for d in (pristine, case_dir):
        if d.exists():
            shutil.rmtree(d)
    pristine.mkdir(parents=True)
    seeds = fmt.setup(pristine)
    (pristine / fmt.rel).parent.mkdir(parents=True, exist_ok=True)
    stats = Stats()
    shutil.copytree(pristine, case_dir, symlinks=True)
    skip = {case_dir / fmt.rel, *(case_dir / o for o in fmt.outputs)}
    before = _tree(case_dir, skip)
    start = time.monotonic()
    # the seeds themselves first: they must pass (exit 0 or a finding), or the target is wrongly wired
    queue: list[bytes | str] = list(seeds)
    while (time.monotonic() - start < seconds or queue) and (max_cases is None or stats.cases < max_cases):
        content = queue.pop(0) if queue else mutate(rng, seeds, fmt.kind)
        code, problem = check(fmt, case_dir, content, before)
        if problem is None and fmt.pinned and code == 0 and content not in seeds:
            problem = "a changed pinned file passed (exit 0): silently misread"
        stats.cases += 1
        stats.codes[code] = stats.codes.get(code, 0) + 1
        if problem is not None:
            what = content if isinstance(content, str) else f"{len(content)} bytes"
            stats.failures.append(f"{fmt.name}: {problem} (input: {what})")
            if crashes is not None and isinstance(content, bytes):
                crashes.mkdir(parents=True, exist_ok=True)
                (crashes / f"{fmt.name}-{hashlib.sha256(content).hexdigest()[:16]}").write_bytes(content)
            shutil.rmtree(case_dir)
            shutil.copytree(pristine, case_dir, symlinks=True)
        elif _tree(case_dir, skip) != before:  # a target may legitimately write its output; start the next case clean
            shutil.rmtree(case_dir)
            shutil.copytree(pristine, case_dir, symlinks=True)
        for o in fmt.outputs:
            p = case_dir / o
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif os.path.lexists(p):
                p.unlink()
    stats.seconds = time.monotonic() - start
    return stats


# ---------------------------------------------------------------- formats: seeds and targets


def _smoke_registry(folder: Path) -> Path:
    from registry.export.smoke import add_smoke
    from registry.store.document import init_registry

    path = init_registry(folder / "reg")
    add_smoke(path, "dists")
    return path


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=True).encode()


def _verify_findings(case: Path) -> int:
    from registry.verify import verify_registry

    return len(verify_registry(case / "reg" / "registry.json").errors)


def _verify(case: Path) -> None:
    """``tinyreg verify``: its errors are exit 1, as on the command line (so a changed pinned file is seen)."""
    from registry.errors import CheckFailed

    if n := _verify_findings(case):
        raise CheckFailed(f"verify: {n} errors")


def _verify_and_load(case: Path) -> None:
    import registry
    from registry.errors import CheckFailed, IntegrityError

    n = _verify_findings(case)
    with contextlib.suppress(IntegrityError):  # exit 1 is fine; anything else goes to the boundary
        registry.load("dists_vgg16", case / "reg" / "registry.json")
    if n:
        raise CheckFailed(f"verify: {n} errors")


def _setup_registry(folder: Path) -> list[bytes]:
    p = _smoke_registry(folder)
    return [p.read_bytes()]


def _setup_sidecar(folder: Path) -> list[bytes]:
    p = _smoke_registry(folder)
    return [(p.parent / "dists_vgg16.json").read_bytes()]


def _setup_model(folder: Path) -> list[bytes]:
    p = _smoke_registry(folder)
    return [(p.parent / "dists_vgg16.onnx").read_bytes()]


def _setup_bundle(folder: Path) -> list[bytes]:
    from registry.signing.sign import set_policy, sign_entries

    p = _smoke_registry(folder)
    priv, pub = keypair(folder, "k")
    set_policy(p, public_key=pub)
    sign_entries(p, None, key=priv)
    return [(p.parent / "dists_vgg16.onnx.sigstore.json").read_bytes()]


def _bundle_target(case: Path) -> None:
    from registry.errors import IntegrityError
    from registry.signing.verify import verify_bundle, verify_entry_signature
    from registry.store.document import read_registry

    reg = read_registry(case / "reg" / "registry.json")
    with contextlib.suppress(IntegrityError):
        verify_entry_signature(reg, reg.get("dists_vgg16"))
    with contextlib.suppress(IntegrityError):
        verify_bundle(case / "reg" / "dists_vgg16.onnx.sigstore.json", artifact=case / "reg" / "dists_vgg16.onnx", key=case / "k.pub.pem")


def _setup_policy(folder: Path) -> list[bytes]:
    from registry.signing.policy import write_policy

    _, pub = keypair(folder, "k")
    write_policy(folder / "policy.json", keys=[pub], identity=None, issuer=None, trusted_root=None, staging=False, replace=True)
    return [(folder / "policy.json").read_bytes()]


def _policy_target(case: Path) -> None:
    from registry.signing.policy import load_policy

    load_policy(case / "policy.json")


def _setup_state(folder: Path) -> list[bytes]:
    return [_json_bytes({"format": 1, "registries": {"/x/registry.json": {"version": 3, "sha256": "0" * 64}}})]


def _state_target(case: Path) -> None:
    from registry.signing.snapshot import read_state

    read_state(case / "state" / "snapshots.json")


def _setup_journal(folder: Path) -> list[bytes]:
    from registry.store.layout import STAGING_DIR

    p = _smoke_registry(folder)
    stage = p.parent / STAGING_DIR
    stage.mkdir()
    zero = "0" * 64
    return [_json_bytes({"tinyreg_update": 1, "files": [{"path": "dists_vgg16.md", "remove": True}], "registry_sha256": zero}),
            _json_bytes({"tinyreg_update": 1, "files": [{"path": "x.json", "staged": "0", "sha256": zero}], "registry_sha256": zero})]


def _journal_target(case: Path) -> None:
    from registry.store.document import reading

    with reading(case / "reg" / "registry.json"):
        pass


def _setup_allowlist(folder: Path) -> list[bytes]:
    from importlib import resources

    _smoke_registry(folder)
    return [resources.files("registry.onnx").joinpath("data", "op_allowlist.json").read_bytes()]


def _allowlist_target(case: Path) -> None:
    from registry.onnx.allowlist import load_allowlist
    from registry.runtime.ops import check_file

    allow = load_allowlist(case / "allow.json")
    check_file(case / "reg" / "dists_vgg16.onnx", allow)


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def _setup_npz(folder: Path) -> list[bytes]:
    from registry.store.document import read_registry

    p = _smoke_registry(folder)
    e = read_registry(p).get("dists_vgg16")
    arrays = {str(t["name"]): np.random.default_rng(0).random((8, 3, 32, 32)).astype(np.float32) for t in e["io"]["inputs"]}
    buf = io.BytesIO()
    np.save(buf, np.zeros((1, 3, 8, 8), np.float32))
    return [_npz(arrays), _npz({k: v[:2] for k, v in arrays.items()}), buf.getvalue()]


def _npz_target(case: Path) -> None:
    from registry._internal.hashing import read_file
    from registry.quant.inputs import check_inputs, parse_npz
    from registry.store.document import read_registry

    data = read_file(case / "inputs.npz", cap="inputs")
    arrays = parse_npz(data, "inputs.npz")
    check_inputs(arrays, read_registry(case / "reg" / "registry.json").get("dists_vgg16"), "inputs.npz")


def _setup_manifest(folder: Path) -> list[bytes]:
    return [b"ref,dist,pair\na.png,b.png,one\nc.y4m,d.y4m,two\n# comment\n", b"a.png,b.png\n\"q,uoted\",x\n"]


def _manifest_target(case: Path) -> None:
    from registry.scoring.manifest import Shard, read_manifest

    Shard(0, 2).take(read_manifest(case / "m.csv"))


_RUN = {"tinyreg_results": 1, "entry": "e", "model_sha256": "a" * 64, "provider": "cpu"}


def _setup_results(folder: Path) -> list[bytes]:
    from registry.scoring.results import PairOutcome, ResultsFile

    out = []
    for fmt in ("jsonl", "csv"):
        p = folder / f"seed.{fmt}"
        with ResultsFile(p, fmt, _RUN) as rf:
            rf.write(PairOutcome("p1", scores=[(0, 0.1), (1, 0.2)]))
            rf.write(PairOutcome("p2", error="x: no such file"))
        out.append(p.read_bytes())
        p.unlink()
    return [out[0], out[0][:-7]]


def _results_target(case: Path) -> None:
    from registry.scoring.results import ResultsFile

    ResultsFile(case / "out" / "r.jsonl", "jsonl", _RUN).open().close()


def _setup_y4m(folder: Path) -> list[bytes]:
    from registry.media.y4m import write_y4m

    rng = np.random.default_rng(0)
    write_y4m(folder / "v.y4m", [rng.random((16, 24, 3), dtype=np.float32) for _ in range(3)])
    return [(folder / "v.y4m").read_bytes()]


def _y4m_target(case: Path) -> None:
    from registry.media.video import open_video

    with open_video(case / "v.y4m", max_pixels=1 << 20) as v:
        for f in v.frames():
            f()


def _setup_image(folder: Path) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = (rng.random((20, 24, 3)) * 255).astype(np.uint8)
    out = []
    for fmt in ("PNG", "JPEG", "BMP", "TIFF", "GIF"):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, fmt)
        out.append(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0].astype(np.uint16) * 257).save(buf, "PNG")
    out.append(buf.getvalue())
    return out


def _image_target(case: Path) -> None:
    from registry.media.images import image_size, read_image

    image_size(case / "img.png", max_pixels=1 << 20)
    read_image(case / "img.png", max_pixels=1 << 20)


def _setup_vmafx(folder: Path) -> list[bytes]:
    src = Path(__file__).resolve().parent / "fixtures" / "vmafx-model-tiny"
    dst = folder / "reg"
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    doc = json.loads((dst / "registry.json").read_text())
    doc["models"] = [m for m in doc["models"] if m["id"] in ("nr_metric_v1", "fr_regressor_v1", "learned_filter_v1")]
    (dst / "registry.json").write_text(json.dumps(doc, indent=2))
    return [(dst / "registry.json").read_bytes(), (dst / "nr_metric_v1.json").read_bytes()]


def _vmafx_target(case: Path) -> None:
    from registry.migrate import migrate_registry
    from registry.verify import verify_registry

    migrate_registry(case / "reg" / "registry.json", dry_run=True)
    verify_registry(case / "reg" / "registry.json")


def _setup_vmafx_sidecar(folder: Path) -> list[bytes]:
    seeds = _setup_vmafx(folder)
    return [seeds[1]]


def _setup_libvmaf(folder: Path) -> list[bytes]:
    frames = [{"frameNum": i, "metrics": {"integer_adm2": 0.9, "integer_vif_scale0": 0.5, "integer_vif_scale1": 0.6,
                                          "integer_vif_scale2": 0.7, "integer_vif_scale3": 0.8, "integer_motion2": 1.5}}
              for i in range(3)]
    csv_log = "Frame,integer_adm2,integer_vif_scale0,integer_vif_scale1,integer_vif_scale2,integer_vif_scale3,integer_motion2\n"
    csv_log += "".join(f"{i},0.9,0.5,0.6,0.7,0.8,1.5\n" for i in range(3))
    return [_json_bytes({"version": "3.0", "frames": frames}), csv_log.encode()]


def _libvmaf_target(case: Path) -> None:
    from registry.media.inputsets import read_feature_log

    read_feature_log(case / "log.json")


def _setup_trusted_root(folder: Path) -> list[bytes]:
    from registry.signing.methods import embedded_trusted_root

    return [embedded_trusted_root(False).read_bytes()]


def _trusted_root_target(case: Path) -> None:
    from registry.signing._methods.sigstore_keyless import load_trusted_root

    load_trusted_root(case / "root.json")


FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("registry", "reg/registry.json", "json", _setup_registry, _verify_and_load, registry="reg"),
    Format("sidecar", "reg/dists_vgg16.json", "json", _setup_sidecar, _verify, registry="reg", pinned=True),
    Format("model", "reg/dists_vgg16.onnx", "binary", _setup_model, _verify_and_load, registry="reg", pinned=True),
    Format("bundle", "reg/dists_vgg16.onnx.sigstore.json", "json", _setup_bundle, _bundle_target, registry="reg"),
    Format("policy", "policy.json", "json", _setup_policy, _policy_target),
    Format("state", "state/snapshots.json", "json", _setup_state, _state_target),
    Format("journal", "reg/.tinyreg-update/journal.json", "json", _setup_journal, _journal_target,
           outputs=("reg",)),  # recovery may legitimately complete or discard an update: checked for exit codes only
    Format("allowlist", "allow.json", "json", _setup_allowlist, _allowlist_target),
    Format("inputs", "inputs.npz", "binary", _setup_npz, _npz_target),
    Format("manifest", "m.csv", "text", _setup_manifest, _manifest_target),
    Format("results", "out/r.jsonl", "text", _setup_results, _results_target),
    Format("y4m", "v.y4m", "binary", _setup_y4m, _y4m_target),
    Format("image", "img.png", "binary", _setup_image, _image_target),
    Format("vmafx", "reg/registry.json", "json", _setup_vmafx, _vmafx_target, registry="reg"),
    Format("vmafx-sidecar", "reg/nr_metric_v1.json", "json", _setup_vmafx_sidecar, _vmafx_target, registry="reg"),
    Format("libvmaf-log", "log.json", "json", _setup_libvmaf, _libvmaf_target),
    Format("trusted-root", "root.json", "json", _setup_trusted_root, _trusted_root_target),
]}


@contextlib.contextmanager
def isolated_state() -> Iterator[Path]:
    """A private TINYREG_STATE_DIR and no TINYREG_TRUST for the run."""
    saved = {k: os.environ.get(k) for k in ("TINYREG_STATE_DIR", "TINYREG_TRUST")}
    with tempfile.TemporaryDirectory(prefix="tinyreg-fuzz-state-") as d:
        os.environ["TINYREG_STATE_DIR"] = d
        os.environ.pop("TINYREG_TRUST", None)
        try:
            yield Path(d)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz_harness", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("TINYREG_FUZZ_SECONDS", "1800")),
                    help="total budget, spread evenly over the formats (env TINYREG_FUZZ_SECONDS)")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("TINYREG_FUZZ_SEED", "0")))
    ap.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset")
    ap.add_argument("--crashes", type=Path, default=None, help="write failing inputs here")
    args = ap.parse_args(argv)
    names = [n for n in args.formats.split(",") if n]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        ap.error(f"unknown formats: {', '.join(unknown)} (known: {', '.join(FORMATS)})")
    per = args.seconds / len(names)
    failures: list[str] = []
    total_cases, t0 = 0, time.monotonic()
    with isolated_state(), tempfile.TemporaryDirectory(prefix="tinyreg-fuzz-") as work:
        for name in names:
            st = fuzz(FORMATS[name], per, args.seed, Path(work), args.crashes)
            total_cases += st.cases
            failures += st.failures
            codes = " ".join(f"{k}:{v}" for k, v in sorted(st.codes.items()))
            print(f"{name:14s} {st.cases:7d} cases in {st.seconds:7.1f} s  exit codes {codes}  failures {len(st.failures)}", flush=True)
            for f in st.failures[:5]:
                print(f"    {f}", flush=True)
    print(f"total: {total_cases} cases in {(time.monotonic() - t0) / 60:.1f} min, {len(failures)} failures", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
