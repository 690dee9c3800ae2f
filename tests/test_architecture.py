"""The architecture as tests: what import-linter cannot say (see docs/architecture.md).

No module imports another module's private (``_``-prefixed) name, and a private module or
package (``registry._internal``, ``registry.signing._methods``, ``registry.cli._options``)
is imported only from inside the package that holds it. ``registry._internal`` sits at the
top of ``registry`` by design, so every module of ``registry`` may import it; outside
``registry`` only ``bench`` may (it times the hasher).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("registry", "bench", "ai")
# private packages that a named outsider may use: bench times the one hasher of registry._internal
ALSO_USED_BY = {"registry._internal": ("bench",)}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_import_violations(path: Path, source: str | None = None) -> list[str]:
    """Every import in ``path`` that reaches another module's private name, or a private module from outside its package."""
    importer = _module_name(path)
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    out: list[str] = []

    def check_module(target: str, line: int) -> None:
        parts = target.split(".")
        for i, part in enumerate(parts):
            if _private(part):
                owner = ".".join(parts[:i])  # the package holding the private module
                users = (owner, *ALSO_USED_BY.get(".".join(parts[: i + 1]), ()))
                if not any(importer == u or importer.startswith(u + ".") for u in users):
                    out.append(f"{path.relative_to(ROOT)}:{line}: imports private module {target} from outside {owner}")
                return

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    check_module(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(importer, is_package, node)
            if target.split(".")[0] not in PACKAGES:
                continue
            check_module(target, node.lineno)
            for alias in node.names:
                if _private(alias.name) and target != importer:
                    # a private submodule of the package itself is a module, checked like one
                    sub = f"{target}.{alias.name}"
                    if (ROOT / Path(*sub.split("."))).is_dir() or (ROOT / Path(*sub.split("."))).with_suffix(".py").is_file():
                        check_module(sub, node.lineno)
                    else:
                        out.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports private name {alias.name} of {target}")
    return out


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_no_module_imports_another_modules_private_name() -> None:
    found = [v for p in _sources() for v in private_import_violations(p)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("where", "code", "bad"),
    [
        ("registry/quant/inputs.py", "from registry.quant.quantize import _helper\n", True),
        ("registry/quant/inputs.py", "from .quantize import _helper\n", True),
        ("registry/verify.py", "from registry.signing._methods.ec_key import KeySigner\n", True),
        ("registry/verify.py", "import registry.cli._options\n", True),
        ("ai/x.py", "from registry._internal.hashing import sha256_file\n", True),
        ("bench/x.py", "from registry._internal.hashing import sha256_file\n", False),
        ("registry/store/pins.py", "from registry._internal.hashing import sha256_bytes\n", False),
        ("registry/signing/sign.py", "from registry.signing._methods import canonical\n", False),
        ("registry/signing/verify.py", "from registry.signing import _methods\n", False),
        ("registry/quant/inputs.py", "from registry.quant.quantize import quiet_root_logger\n", False),
        ("registry/quant/inputs.py", "from typing import _SpecialForm\n", False),
    ],
)
def test_the_private_import_rule_catches_what_it_should(where: str, code: str, bad: bool) -> None:
    assert bool(private_import_violations(ROOT / where, code)) is bad


def test_test_modules_share_factories_not_each_other() -> None:
    """Helpers several test modules use live in tests/factories.py; no module imports a test module."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mod = node.module if isinstance(node, ast.ImportFrom) else None
            if mod and mod.startswith("tests.") and mod.split(".")[-1].startswith("test_"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {mod}")
    assert not found, "\n".join(found)


def test_every_part_of_registry_is_in_a_layer() -> None:
    """import-linter does not constrain a module no contract names: a new top-level module must join a layer."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["id"] == "layers")["layers"]
    named = {m.strip() for layer in layers for m in layer.replace(":", "|").split("|")}
    parts = {f"registry.{p.stem}" for p in (ROOT / "registry").iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file())) and p.stem not in ("__init__", "__main__")}
    assert parts - named == set(), "add these to a layer in [tool.importlinter] (pyproject.toml)"
    assert named - parts == set(), "the layers name modules that do not exist"


def test_no_module_of_registry_imports_the_package_root() -> None:
    """The root (registry/__init__.py) wires the layers together, so importing it from below would climb every layer."""
    found = []
    for path in sorted((ROOT / "registry").rglob("*.py")):
        if path == ROOT / "registry" / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.ImportFrom) and node.module == "registry" and not node.level) or (
                    isinstance(node, ast.Import) and any(a.name == "registry" for a in node.names)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, "read __version__ from registry._internal.version: " + ", ".join(found)
