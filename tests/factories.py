"""Shared test factories: one place for what several test modules build (keys, signed registries, entries, CLI runs).

Import them from here (``from tests.factories import keypair``), never from another test module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image
from typer.testing import Result

from registry.signing.policy import write_policy
from registry.signing.sign import sign_entries
from registry.store.document import read_registry
from registry.store.entries import write_entry
from tests import onnx_factory as f

REPO = Path(__file__).resolve().parents[1]
# a 1x4 float model's I/O contract (tests/onnx_factory.py models)
IO = {
    "inputs": [{"name": "x", "dtype": "float32", "shape": [1, 4]}],
    "outputs": [{"name": "y", "dtype": "float32", "shape": [1, 4]}],
}

GH = "https://token.actions.githubusercontent.com"
GHO = "https://github.com/login/oauth"
SIGSTORE_FIXTURES = [  # artifact, bundle, instance, identity, issuer (from the fixture MANIFEST.md)
    ("bundle_v3_github.whl", "bundle_v3_github.whl.sigstore", "production",
     "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2", GH),
    ("bundle_v3.txt", "bundle_v3.txt.sigstore", "staging", "william@yossarian.net", GHO),
    ("staging-rekor-v2.txt", "staging-rekor-v2.txt.sigstore.json", "staging", "jku@goto.fi", GHO),
    (None, "a.dsse.staging-rekor-v2.txt.sigstore.json", "staging",
     "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/"
     "extremely-dangerous-oidc-beacon.yml@refs/heads/main", GH),
]


def keypair(folder: Path, name: str) -> tuple[Path, Path]:
    k = ec.generate_private_key(ec.SECP256R1())
    priv, pub = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    priv.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pub.write_bytes(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


@dataclass
class Signed:
    reg: Path  # registry.json
    priv: Path
    pub: Path
    policy: Path  # the consumer's policy, outside the registry folder

    @property
    def root(self) -> Path:
        return self.reg.parent

    def doc(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.reg.read_text())

    def write_doc(self, doc: dict) -> None:  # type: ignore[type-arg]
        self.reg.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")

    def row(self, doc: dict, eid: str = "dists_vgg16") -> dict:  # type: ignore[type-arg]
        return next(m for m in doc["models"] if m["id"] == eid)


def make_signed(tmp_path: Path) -> Signed:
    """A copy of the shipped registry (int8 siblings, calibration set, gate records), signed with a key."""
    root = tmp_path / "model" / "tiny"
    shutil.copytree(REPO / "model" / "tiny", root)
    keys = tmp_path / "keys"
    keys.mkdir()
    priv, pub = keypair(keys, "maintainer")
    policy = keys / "trust.json"
    write_policy(policy, keys=[pub])
    sign_entries(root / "registry.json", None, key=priv)
    return Signed(root / "registry.json", priv, pub, policy)


def run_tinyreg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m registry ARGS`` in a fresh interpreter (exit codes, stderr, lazy imports)."""
    full = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250", **(env or {})}
    return subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, env=full, timeout=300)


def one_line_error(r: Result | subprocess.CompletedProcess[str], code: int) -> str:
    """The one stderr line of a failed command (in-process Result or a real process)."""
    got = r.exit_code if isinstance(r, Result) else r.returncode
    assert got == code, (got, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyreg: "), r.stderr
    return lines[0]


def add_external_entry(reg_path: Path, kind: str, eid: str = "ext") -> None:
    m, data = f.external_model(kind, f"{eid}.weights.bin")
    fields = dict(read_registry(reg_path).get("dists_vgg16"))
    fields.update({"id": eid, "onnx": f"{eid}.onnx", "files": None, "sha256": "0" * 64, "io": IO})
    write_entry(reg_path, fields, {f"{eid}.onnx": m.SerializeToString(), f"{eid}.weights.bin": data})


def add_external_data_entry(reg_path: Path) -> None:
    """Add entry ``ext``: a model whose weights live in the external data file ``ext.onnx.data``."""
    tmp = reg_path.parent / "_staging"
    tmp.mkdir()
    m = f.with_external(tmp, "ext.onnx.data", data_name="ext.onnx.data")
    fields = dict(read_registry(reg_path).get("dists_vgg16"))
    fields.update({"id": "ext", "onnx": "ext.onnx", "files": None, "sha256": "0" * 64, "io": IO})
    write_entry(reg_path, fields, {"ext.onnx": m.SerializeToString(), "ext.onnx.data": (tmp / "ext.onnx.data").read_bytes()})
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()


def invoke_cli(*args: str) -> tuple[int, str, str]:
    """The CLI in-process (exit code, stdout, stderr): the same commands, without a new interpreter each time."""
    from typer.testing import CliRunner

    from registry.cli import app

    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) -> its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def png(path: Path, arr: np.ndarray) -> Path:
    """Write a float image in [0, 1] as an 8-bit PNG."""
    Image.fromarray(np.clip(arr * 255 + 0.5, 0, 255).astype(np.uint8)).save(path)
    return path
