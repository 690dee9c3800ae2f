"""Numeric options range-checked when parsed; manifests and input sets that used to crash (issue 16 item 3)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from registry.errors import InputError, UsageError
from registry.quant.inputs import parse_npz
from registry.scoring.manifest import read_manifest
from registry.signing.snapshot import next_snapshot

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"})


def one_line(p: subprocess.CompletedProcess[str], code: int) -> str:
    lines = p.stderr.strip().splitlines()
    assert p.returncode == code and len(lines) == 1, (p.returncode, p.stderr)
    return lines[0]


@pytest.mark.parametrize("days", [0, -1, 3661, 3_000_000, 10**30])
def test_expires_in_out_of_range_is_a_usage_error(days: int) -> None:
    with pytest.raises(UsageError, match="1 to 3660 days"):
        next_snapshot({"schema_version": 2, "models": []}, days)


def test_sign_expires_in_3000000_is_one_line(reg_path: Path, tmp_path: Path) -> None:
    from tests.factories import keypair

    priv, _ = keypair(tmp_path, "k")
    line = one_line(cli("sign", "--all", "--key", str(priv), "--expires-in", "3000000", "--registry", str(reg_path)), 2)
    assert "1 to 3660 days" in line and "--expires-in" in line


@pytest.mark.slow
@pytest.mark.parametrize(("flag", "value"), [("--every", "0"), ("--start", "-1"), ("--frames", "0"), ("--workers", "-2"),
                                             ("--max-pixels", "-5"), ("--every", str(1 << 41))])
def test_score_numeric_ranges(reg_path: Path, tmp_path: Path, flag: str, value: str) -> None:
    line = one_line(cli("score", "dists_vgg16", "a.png", "b.png", flag, value, "--registry", str(reg_path)), 2)
    assert flag in line and "out of range" in line


def test_manifest_huge_field_and_nul_are_one_line(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("ref,dist\n" + '"' + "a" * 200_000 + '",b.png\n')
    with pytest.raises(InputError, match=r"m\.csv:2: "):
        read_manifest(m)
    m.write_text("ref,dist\n" + "a" * 5000 + ",b.png\n")
    with pytest.raises(InputError, match="a field of 5000 characters"):
        read_manifest(m)
    m.write_bytes(b"ref,dist\na\x00.png,b.png\n")
    with pytest.raises(InputError):
        read_manifest(m)
    os.mkfifo(tmp_path / "fifo.csv")
    with pytest.raises(InputError, match="FIFO"):
        read_manifest(tmp_path / "fifo.csv")


def test_manifest_field_over_csv_limit_via_cli(reg_path: Path, tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text('"' + "a" * 200_000 + '",b.png\n')
    line = one_line(cli("score", "dists_vgg16", "--manifest", str(m), "--out", str(tmp_path / "r.jsonl"), "--registry", str(reg_path)), 2)
    assert "m.csv:1" in line


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_plain_npy_and_non_zip_are_refused() -> None:
    with pytest.raises(InputError, match=r"single \.npy array"):
        parse_npz(_npy(np.zeros((2, 3), np.float32)), "x.npy")
    with pytest.raises(InputError, match=r"not an \.npz archive"):
        parse_npz(b"hello", "x.npz")


def test_plain_npy_to_quantize_inputs_is_one_line(reg_path: Path, tmp_path: Path) -> None:
    f = tmp_path / "in.npy"
    f.write_bytes(_npy(np.zeros((1, 3, 8, 8), np.float32)))
    p = cli("quantize", "dists_vgg16", "--inputs", str(f), "--registry", str(reg_path))
    assert "single .npy array" in one_line(p, 2)


def test_npz_with_a_mangled_array_header_or_zip_version_is_bad_input() -> None:
    """Found by the fuzz harness: numpy tokenizes the header (TokenError) and zipfile refuses unknown versions
    (NotImplementedError); both were exit 70."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ref.npy", b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'shape': (1,\n" + b" " * 20)
    with pytest.raises(InputError, match=r"not a readable \.npz"):
        parse_npz(buf.getvalue(), "x.npz")
    data = bytearray(_npz_bytes())
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 6] = 0xFF  # "version needed to extract" of the central directory entry
    with pytest.raises(InputError, match=r"not a readable \.npz"):
        parse_npz(bytes(data), "x.npz")


def _npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, ref=np.zeros((2, 2), np.float32))
    return buf.getvalue()


def test_libvmaf_value_beyond_float32_is_one_line(tmp_path: Path) -> None:
    """Found by the fuzz harness: 1e300 is finite, but casting it to float32 printed numpy's overflow warning."""
    import json
    import warnings

    from registry.media.inputsets import read_feature_log

    metrics = {"integer_adm2": 1e300, "integer_vif_scale0": 0.5, "integer_vif_scale1": 0.6, "integer_vif_scale2": 0.7,
               "integer_vif_scale3": 0.8, "integer_motion2": 1.5}
    log = tmp_path / "log.json"
    log.write_text(json.dumps({"frames": [{"frameNum": 0, "metrics": metrics}]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="no usable 'adm2'"):
            read_feature_log(log)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_int8_next_to_an_explicit_other_precision_is_refused(reg_path: Path, precision: str) -> None:
    # `--int8 --precision fp32` used to score the int8 sibling and drop the explicit fp32 silently
    line = one_line(cli("score", "dists_vgg16", "a.png", "b.png", "--int8", "--precision", precision,
                        "--registry", str(reg_path)), 2)
    assert "--int8" in line and f"--precision {precision}" in line and "disagree" in line
