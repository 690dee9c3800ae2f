"""The README's quick start, pasted as a newcomer would, works; the front page stays a front page."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
INSTALL = re.compile(r"^python3 -m venv .*pip install")  # the environment is this test's own


def quick_start_blocks() -> list[str]:
    """The ```sh blocks of the README's "Quick start" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_readme_is_a_front_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert "placeholder" in text.split("## Quick start")[0]  # said before anything else
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (REPO / target).is_file(), f"README links to {target}, which does not exist"


def test_quick_start_blocks_are_the_docs_quick_start() -> None:
    docs = (REPO / "docs" / "quickstart.md").read_text(encoding="utf-8")
    for block in quick_start_blocks():
        assert block in docs, "docs/quickstart.md shows different commands than the README"


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """A PATH whose `tinyreg` and `python` are this checkout and this interpreter; HOME in tmp."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH (the quick start makes its key pair with it)")
    pytest.importorskip("av", reason="PyAV (the 'video' extra, installed by make test) is needed for dist.mp4")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tinyreg").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m registry "$@"\n')
    (bin_dir / "tinyreg").chmod(0o755)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYREG_") or k == "TINYREG_THREADS"}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", HOME=str(home), PYTHONPATH=str(REPO),
               TINYREG_STATE_DIR=str(tmp_path / "state"))
    return env


@pytest.mark.slow
def test_quick_start_runs(shell_env: dict[str, str]) -> None:
    blocks = quick_start_blocks()
    assert len(blocks) == 3
    lines = [ln for ln in blocks[0].splitlines() if ln.strip()]
    assert INSTALL.match(lines[0]), "the quick start starts with the install"
    assert len(lines) == 5, "five commands from a clone to a scored video pair"
    script = [ln for ln in [*lines[1:], *blocks[1].splitlines(), *blocks[2].splitlines()] if ln.strip()]
    # the README's commands, one by one: stop at the first that fails (set -e would not see the
    # first half of `a && b` fail), and print a marker after each so their outputs can be told apart
    marked = "\n".join(f"{ln}\nrc=$?; [ $rc -eq 0 ] || exit $rc\necho '@@@ {i}'" for i, ln in enumerate(script))
    p = subprocess.run(["bash", "-c", marked], cwd=REPO, env=shell_env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    outs = re.split(r"^@@@ \d+\n", p.stdout, flags=re.M)
    image = next(o for o in outs if o.startswith("SSIM"))  # the score line people read
    m = re.match(r"SSIM \(.*\): ([0-9.]+) \(higher is better .\), fp32, entry ssim_luma$", image.strip())
    assert m and 0.5 < float(m.group(1)) < 1.0, image
    video_csv = next(o for o in outs if o.startswith("frame,score\n"))
    rows = video_csv.strip().splitlines()[1:]
    assert len(rows) == 24 and all(0.5 < float(r.split(",")[1]) < 1.0 for r in rows)
    assert "OK: 1 entries" in p.stdout

    try_dir = Path(shell_env["HOME"]) / "tinyreg-try"
    page = (try_dir / "report.html").read_text(encoding="utf-8")  # the report of the scored pair
    assert "<svg" in page and "clip" in page
    # "edit any pinned byte and it exits 1"
    onnx = try_dir / "model" / "tiny" / "ssim_luma.onnx"
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 1
    onnx.write_bytes(bytes(data))
    p = subprocess.run(["bash", "-c", "tinyreg verify --trust trust.json"], cwd=try_dir, env=shell_env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr


@pytest.mark.slow  # 15 s on 2 cores; test_api and the quick start cover the same calls
def test_python_example_in_the_readme(tmp_path: Path) -> None:
    """The README's Python block runs as written (inside a folder set up by the quick start)."""
    text = README.read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    subprocess.run([sys.executable, str(REPO / "examples" / "make_media.py"), str(tmp_path)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TINYREG_STATE_DIR": str(tmp_path / "state")}
    env.pop("TINYREG_REGISTRY", None)
    env.pop("TINYREG_TRUST", None)
    for cmd in (["init"], ["add", "ssim"]):
        subprocess.run([sys.executable, "-m", "registry", *cmd], cwd=tmp_path, env=env, check=True, capture_output=True)
    key = tmp_path / "signing.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    priv = ec.generate_private_key(ec.SECP256R1())
    key.write_bytes(priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (tmp_path / "signing.pub.pem").write_bytes(priv.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for cmd in (["sign", "--all", "--key", "signing.pem"], ["trust", "--key", "signing.pub.pem", "--out", "trust.json"]):
        subprocess.run([sys.executable, "-m", "registry", *cmd], cwd=tmp_path, env=env, check=True, capture_output=True)
    prog = code + "\nassert report.ok and 0.5 < res.scores[0] < 1.0 and sess is not None\nprint('ran')\n"
    p = subprocess.run([sys.executable, "-c", prog], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip().endswith("ran"), p.stderr
