"""The one safe reader: special files refused without blocking, caps checked before reading (issue 16 item 1/2)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry._internal.hashing import check_pinned_file, read_file, read_pinned, sha256_file
from registry._internal.safeio import Refused, check_regular, read_capped, read_raw
from registry.errors import Error, InputError
from registry.verify import verify_registry

REPO = Path(__file__).resolve().parents[2]


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.fixture
def special(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """A FIFO (no writer: a blocking open would hang), a socket, a symlink to /dev/zero, a directory."""
    out = {"fifo": _fifo(tmp_path / "fifo"), "dir": tmp_path / "adir"}
    out["dir"].mkdir()
    (tmp_path / "zero").symlink_to("/dev/zero")
    out["devzero"] = tmp_path / "zero"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    out["socket"] = tmp_path / "sock"
    try:
        yield out
    finally:
        sock.close()


def _with_deadline(fn: object, *args: object) -> BaseException | None:
    """Run ``fn`` in a thread; a hang past 10 s fails the test instead of the suite."""
    caught: list[BaseException | None] = [None]

    def run() -> None:
        try:
            fn(*args)  # type: ignore[operator]
        except BaseException as exc:
            caught[0] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), f"{fn} hung on a special file"
    return caught[0]


@pytest.mark.parametrize("kind", ["fifo", "socket", "devzero", "dir"])
@pytest.mark.parametrize("reader", [
    lambda p: read_capped(p, "document"),
    lambda p: read_file(p),
    lambda p: sha256_file(p),
    lambda p: read_pinned(p, "0" * 64, 10),
    lambda p: read_pinned(p, "0" * 64),
    lambda p: check_pinned_file(p, "0" * 64),
    lambda p: check_regular(p),
])
def test_every_reader_refuses_special_files_without_blocking(special: dict[str, Path], kind: str, reader: object) -> None:
    exc = _with_deadline(reader, special[kind])
    assert isinstance(exc, Error), exc
    assert "regular file" in exc.diagnostics() or "socket or device" in exc.diagnostics(), exc.diagnostics()


def test_read_raw_raises_oserror_naming_the_kind(special: dict[str, Path]) -> None:
    with pytest.raises(Refused, match=r"named pipe \(FIFO\), not a regular file"):
        read_raw(special["fifo"], 100)
    assert isinstance(Refused("x"), OSError)  # every existing "except OSError" words it


def test_cap_is_checked_before_reading_a_huge_sparse_file(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(8 << 30)  # 8 GiB, sparse: reading it would take minutes and all memory
    with pytest.raises(InputError, match="more than the 16 MiB"):
        read_capped(big, "document")
    with pytest.raises(Error, match="more than"):
        read_pinned(big, "0" * 64, cap=1 << 20)


def test_exact_cap_reads_and_one_more_byte_refuses(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"x" * 100)
    assert read_capped(p, 100) == b"x" * 100
    with pytest.raises(InputError, match="more than the 99 bytes"):
        read_capped(p, 99)


@pytest.mark.slow
def test_fifo_in_the_registry_folder_never_hangs_verify_load_or_the_cli(reg_path: Path) -> None:
    root = reg_path.parent
    for name in ("dists_vgg16.onnx", "dists_vgg16.json", "stray.bin"):
        target = root / name
        saved = target.read_bytes() if target.exists() else None
        target.unlink(missing_ok=True)
        _fifo(target)
        try:
            r = verify_registry(reg_path)
            want = "does not list it" if name == "stray.bin" else "FIFO"
            assert any(want in f.message for f in r.errors), r.findings
            p = subprocess.run([sys.executable, "-m", "registry", "verify", "--registry", str(reg_path)], capture_output=True,
                               text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
            assert p.returncode == 1, p.stderr
            if name == "dists_vgg16.onnx":
                import registry

                exc = _with_deadline(registry.load, "dists_vgg16", reg_path)
                assert isinstance(exc, Error) and "FIFO" in exc.diagnostics()
        finally:
            target.unlink()
            if saved is not None:
                target.write_bytes(saved)


def test_public_key_with_an_unknown_curve_is_bad_input() -> None:
    """Found by the fuzz harness: a PEM key whose curve OID was flipped raised UnsupportedAlgorithm (exit 70)."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from registry.signing.policy import key_fingerprint

    der = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    bad = der.replace(bytes.fromhex("2a8648ce3d030107"), bytes.fromhex("2b8648ce3d030107"))
    pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(bad) + b"-----END PUBLIC KEY-----\n"
    with pytest.raises(InputError, match="not a PEM public key"):
        key_fingerprint(pem, "k.pub.pem")


def test_results_file_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    """Found by the fuzz harness after the merge: the results reader read an 8 GiB sparse file whole."""
    from registry.scoring.results import ResultsFile

    big = tmp_path / "r.jsonl"
    with open(big, "wb") as fh:
        fh.truncate(8 << 30)
    with pytest.raises(InputError, match="more than the 1 GiB"):
        ResultsFile(big, "jsonl", {"tinyreg_results": 1}).open()
    assert big.stat().st_size == 8 << 30
