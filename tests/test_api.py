"""The declared library surface: registry.__all__ imports lazily, is documented, and stays light."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import registry

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "onnxruntime", "onnx", "numpy", "av", "ray", "PIL", "skimage", "sigstore", "typer", "rich")


def test_all_is_the_lazy_table() -> None:
    assert set(registry.__all__) == {"__version__", *registry._LAZY}
    assert len(registry.__all__) == len(set(registry.__all__))


@pytest.mark.parametrize("name", sorted(registry._LAZY))
def test_every_public_name_imports_and_has_a_docstring(name: str) -> None:
    module, attr = registry._LAZY[name]
    obj = getattr(registry, name)
    assert obj is getattr(__import__(module, fromlist=[attr]), attr)
    doc = inspect.getdoc(obj)
    assert doc and len(doc.split()) >= 3, f"registry.{name} needs a docstring"
    assert name in dir(registry)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        registry.nope  # noqa: B018


def test_error_classes_catch_as_documented() -> None:
    assert issubclass(registry.SignatureError, registry.IntegrityError)
    assert issubclass(registry.RegistryNotFound, registry.InputError)
    for name in registry.__all__:
        obj = getattr(registry, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning) and obj is not registry.Error:
            assert issubclass(obj, registry.Error), name


def _imported_after(code: str) -> set[str]:
    prog = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, env=env, check=True)
    return {m.split(".")[0] for m in json.loads(p.stdout.splitlines()[-1])}


def test_import_registry_is_light() -> None:
    """``import registry`` (and reading ``__all__``, ``__version__``) loads no heavy dependency."""
    loaded = _imported_after("import registry\nregistry.__all__, registry.__version__, dir(registry)")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_errors_and_verify_types_need_no_runtime() -> None:
    """``except registry.SignatureError`` and the verify report types never pull in onnxruntime or torch."""
    loaded = _imported_after("import registry\nregistry.SignatureError, registry.Report, registry.Finding, registry.verify_registry")
    assert not loaded & {"torch", "onnxruntime"}, loaded & {"torch", "onnxruntime"}


def test_one_argument_order() -> None:
    """Entry id first; ``registry`` a keyword-only parameter that takes a file or a folder."""
    for name in ("load", "load_entry", "score_images", "score_videos", "score_dataset", "sign", "push"):
        params = inspect.signature(getattr(registry, name)).parameters
        assert next(iter(params)) == "entry_id", name
        assert "registry" in params, name
        if name not in ("load", "load_entry"):  # load(entry_id, registry) predates the rule; positional stays valid
            assert params["registry"].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert next(iter(inspect.signature(registry.verify_registry).parameters)) == "registry"
    pull = inspect.signature(registry.pull).parameters  # no entry id: the reference names it
    assert next(iter(pull)) == "ref" and pull["registry"].kind is inspect.Parameter.KEYWORD_ONLY


def test_old_argument_order_is_a_clear_type_error(reg_path: Path, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="entry id first"):
        registry.score_images(reg_path, "dists_vgg16", tmp_path / "a.png")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="entry id first"):
        registry.score_videos(reg_path, "dists_vgg16", tmp_path / "a.y4m")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="entry id first"):
        registry.score_dataset(reg_path, "dists_vgg16", tmp_path / "m.csv", tmp_path / "o.jsonl")  # type: ignore[arg-type]
    assert not (tmp_path / "o.jsonl").exists()


def test_version_is_the_package_version() -> None:
    from registry.cli._reference import _help

    assert registry.__version__.count(".") == 2
    p = subprocess.run([sys.executable, "-m", "registry", "--version"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0 and p.stdout.strip() == f"tinyreg {registry.__version__}"
    assert "--version" in _help([])


def test_subpackages_declare_all() -> None:
    import importlib
    import pkgutil

    for m in pkgutil.iter_modules(registry.__path__):
        if m.ispkg:
            mod = importlib.import_module(f"registry.{m.name}")
            assert isinstance(getattr(mod, "__all__", None), list), f"registry.{m.name} declares no __all__"
            for name in mod.__all__:
                assert hasattr(mod, name) or importlib.util.find_spec(f"registry.{m.name}.{name}"), (m.name, name)
