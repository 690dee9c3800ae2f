"""From the built wheel, without extras: everyday image scoring works; a missing extra is one line naming it (issue 16 item 10).

The wheel is built offline (``pip wheel --no-deps --no-build-isolation``, the venv's setuptools), installed with
``--no-deps --target`` into a temporary folder, and run with a ``sitecustomize`` that makes every optional
module unimportable (``av``, ``ray``, ``sigstore``, ``torch``, ...): the base dependencies come from this
environment, the optional ones are as absent as in a fresh ``pip install tinyreg``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from registry._internal.deps import EXTRAS

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "model" / "tiny"

BLOCKER = '''
import importlib.abc, sys
BLOCKED = set({blocked!r})
class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Blocker())
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    dist, target, block = tmp / "dist", tmp / "target", tmp / "block"
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                        "-w", str(dist), str(REPO)], capture_output=True, text=True, timeout=600, cwd=tmp)
    assert p.returncode == 0, p.stderr
    wheels = list(dist.glob("tinyreg-*.whl"))
    assert len(wheels) == 1, wheels
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target),
                        str(wheels[0])], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    block.mkdir()
    (block / "sitecustomize.py").write_text(BLOCKER.format(blocked=sorted(optional_modules(target) | set(EXTRAS))))
    yield tmp


def optional_modules(target: Path) -> set[str]:
    """Top-level modules of every distribution the wheel requires only under an extra (never in its base install)."""
    import re
    from importlib.metadata import packages_distributions

    meta = next(target.glob("tinyreg-*.dist-info")) / "METADATA"
    base, optional = set(), set()
    for line in meta.read_text().splitlines():
        if line.startswith("Requires-Dist:"):
            req = line.split(":", 1)[1].strip()
            name = re.split(r"[\s\[<>=!~;(]", req, maxsplit=1)[0].lower().replace("_", "-")
            (optional if "extra ==" in req else base).add(name)
    only_optional = optional - base
    modules = set()
    for module, dists in packages_distributions().items():
        if any(d.lower().replace("_", "-") in only_optional for d in dists) and not any(
                d.lower().replace("_", "-") in base for d in dists):
            modules.add(module)
    return modules


def tinyreg(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{tmp / 'block'}{os.pathsep}{tmp / 'target'}", "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-c", "from registry.cli import main; main()", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp)


@pytest.mark.slow
def test_pillow_is_a_base_dependency(installed: Path) -> None:
    assert "PIL" not in optional_modules(installed / "target")
    assert {"av", "ray", "sigstore", "torch", "skimage"} <= optional_modules(installed / "target") | set(EXTRAS)


def test_the_wheel_is_what_runs_and_ships_its_schemas(installed: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{installed / 'block'}{os.pathsep}{installed / 'target'}"}
    p = subprocess.run([sys.executable, "-c", "import registry, av"], capture_output=True, text=True, env=env, timeout=60, cwd=installed)
    assert p.returncode != 0 and "No module named 'av'" in p.stderr  # the blocker works
    p = subprocess.run([sys.executable, "-c", "import registry; print(registry.__file__)"], capture_output=True, text=True,
                       env=env, timeout=60, cwd=installed)
    assert p.stdout.strip().startswith(str(installed / "target")), p.stdout
    for rel in ("registry/onnx/data/allowlist.schema.json", "registry/store/data/registry.schema.json"):
        assert (installed / "target" / rel).is_file(), rel


def test_image_scoring_needs_no_extra(installed: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray((rng.random((48, 48, 3)) * 255).astype(np.uint8)).save(installed / name)
    p = tinyreg(installed, "score", "ssim_luma", "a.png", "b.png", "--registry", str(SHIPPED), "--json")
    assert p.returncode == 0, p.stderr
    assert "score" in json.loads(p.stdout)


@pytest.mark.slow
@pytest.mark.parametrize(("args", "extra"), [
    (["score", "dists_vgg16", "--ref", "a.mp4", "--dist", "b.mp4"], "video"),
    (["score", "dists_vgg16", "--manifest", "m.csv", "--out", "o.jsonl", "--engine", "ray"], "scale"),
    (["verify-bundle", "x.onnx", "--bundle", "x.sig", "--identity", "a@b.c", "--issuer", "https://accounts.example"], "sign"),
])
def test_missing_extra_is_one_line_naming_it(installed: Path, args: list[str], extra: str) -> None:
    (installed / "a.mp4").write_bytes(b"\0" * 64)
    (installed / "b.mp4").write_bytes(b"\0" * 64)
    (installed / "m.csv").write_text("a.mp4,b.mp4\n")
    (installed / "x.onnx").write_bytes(b"x")
    (installed / "x.sig").write_text('{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}')
    p = tinyreg(installed, *args, *(["--registry", str(SHIPPED)] if args[0] == "score" else []))
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert f"pip install 'tinyreg[{extra}]'" in lines[0]
