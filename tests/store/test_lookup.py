"""One way to find a registry: --registry DIR, registry=DIR, the current folder and $TINYREG_REGISTRY."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import registry
from registry.cli import app
from registry.errors import RegistryNotFound
from registry.store.document import ENV_REGISTRY, find_registry, init_registry


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A project folder with its registry at model/tiny/registry.json."""
    init_registry(tmp_path / "proj" / "model" / "tiny")
    return tmp_path / "proj"


def test_folder_lookup_is_the_same_for_every_caller(checkout: Path) -> None:
    reg = checkout / "model" / "tiny" / "registry.json"
    assert find_registry(checkout) == reg  # DIR/model/tiny/registry.json
    assert find_registry(reg.parent) == reg  # DIR/registry.json
    assert find_registry(reg) == reg  # the file itself
    assert find_registry(start=checkout) == reg  # running inside DIR
    assert find_registry(str(checkout)) == reg  # a str is a path too


def test_registry_json_in_the_folder_wins_over_model_tiny(checkout: Path) -> None:
    own = init_registry(checkout)
    assert find_registry(checkout) == own == find_registry(start=checkout)


def test_a_folder_without_a_registry_names_it(tmp_path: Path) -> None:
    with pytest.raises(RegistryNotFound, match=r"no registry\.json or model/tiny/registry\.json in that folder"):
        find_registry(tmp_path)
    with pytest.raises(RegistryNotFound, match="no registry file there"):
        find_registry(tmp_path / "nope.json")


def test_env_variable(checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = checkout / "model" / "tiny" / "registry.json"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = init_registry(tmp_path / "other")
    monkeypatch.setenv(ENV_REGISTRY, str(checkout))
    assert find_registry(start=elsewhere) == reg  # outside any checkout
    assert find_registry(start=other.parent) == reg  # the variable wins over discovery, as GIT_DIR does
    assert find_registry(other) == other  # an explicit registry wins over the variable
    monkeypatch.setenv(ENV_REGISTRY, str(tmp_path / "missing"))
    with pytest.raises(RegistryNotFound, match=f"{ENV_REGISTRY}="):
        find_registry(start=elsewhere)
    monkeypatch.setenv(ENV_REGISTRY, "")  # empty: unset
    with pytest.raises(RegistryNotFound, match="or a parent"):
        find_registry(start=elsewhere)


def test_env_variable_expands_home(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(checkout.parent))
    monkeypatch.setenv(ENV_REGISTRY, "~/proj")
    assert find_registry(start=checkout.parent) == checkout / "model" / "tiny" / "registry.json"
    assert find_registry("~/proj") == checkout / "model" / "tiny" / "registry.json"  # registry="~/..." as well


def test_verify_registry_takes_a_folder(checkout: Path) -> None:
    """verify_registry("reg/model/tiny") used to raise 'is a directory'; now every form works."""
    reg = checkout / "model" / "tiny" / "registry.json"
    for given in (checkout, reg.parent, reg, str(reg.parent)):
        report = registry.verify_registry(given)
        assert report.ok and report.registry == str(reg), given


def test_verify_registry_finds_it_like_the_cli(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(checkout)
    assert registry.verify_registry().registry == str(checkout.resolve() / "model" / "tiny" / "registry.json")


def test_cli_registry_dir_and_env(checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = CliRunner().invoke(app, ["add", "ssim", "--registry", str(checkout)])
    assert r.exit_code == 0, r.output
    assert "ssim_luma" in json.loads((checkout / "model" / "tiny" / "registry.json").read_text())["models"][0]["id"]
    monkeypatch.chdir(tmp_path)  # outside the checkout
    r = CliRunner().invoke(app, ["list", "--json"])
    assert r.exit_code == 2
    monkeypatch.setenv(ENV_REGISTRY, str(checkout))
    r = CliRunner().invoke(app, ["list", "--json"])
    assert r.exit_code == 0 and "ssim_luma" in r.stdout
    r = CliRunner().invoke(app, ["verify", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"] is True


def test_library_score_takes_registry_dir(checkout: Path, tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    CliRunner().invoke(app, ["add", "ssim", "--registry", str(checkout)])
    rng = np.random.default_rng(0)
    a = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    res = registry.score_images("ssim_luma", tmp_path / "a.png", os.fspath(tmp_path / "a.png"), registry=checkout)
    assert res.scores == [pytest.approx(1.0, abs=1e-6)]


def test_init_goes_where_the_variable_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_REGISTRY, str(tmp_path / "models"))
    r = CliRunner().invoke(app, ["init"])
    assert r.exit_code == 0 and (tmp_path / "models" / "registry.json").is_file(), r.output
    assert find_registry(start=tmp_path) == tmp_path / "models" / "registry.json"
    monkeypatch.setenv(ENV_REGISTRY, str(tmp_path / "other" / "registry.json"))
    assert CliRunner().invoke(app, ["init"]).exit_code == 0 and (tmp_path / "other" / "registry.json").is_file()
    monkeypatch.delenv(ENV_REGISTRY)
    assert CliRunner().invoke(app, ["init"]).exit_code == 0 and (tmp_path / "model" / "tiny" / "registry.json").is_file()


def test_a_fifo_or_a_folder_named_registry_json_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "registry.json"
    os.mkfifo(fifo)
    with pytest.raises(RegistryNotFound):
        find_registry(tmp_path)  # never opened: a FIFO would block a reader
    with pytest.raises(RegistryNotFound):
        find_registry(fifo)
    (tmp_path / "d" / "registry.json").mkdir(parents=True)
    with pytest.raises(RegistryNotFound):
        find_registry(tmp_path / "d")


def test_pull_destination_uses_the_same_lookup(checkout: Path, tmp_path: Path) -> None:
    from registry.distribution.puller import _dest_folder

    assert _dest_folder(checkout) == checkout / "model" / "tiny"  # an existing registry, found by the one rule
    assert _dest_folder(checkout / "model" / "tiny" / "registry.json") == checkout / "model" / "tiny"
    assert _dest_folder(tmp_path / "new") == tmp_path / "new"  # none yet: the folder becomes one
    assert _dest_folder(tmp_path / "new2" / "registry.json") == tmp_path / "new2"
