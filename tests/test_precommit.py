"""The shipped .pre-commit-hooks.yaml under the real ``pre-commit``, offline, in a throw-away git repository.

The hooks are taken from the repository's own .pre-commit-hooks.yaml and declared as ``repo: local``
hooks with ``language: unsupported`` (pre-commit's name for ``system`` since 4.4): the entry then
runs the ``tinyreg`` of this virtual environment and pre-commit builds no environment, so nothing is
downloaded (a proxy that refuses every connection and ``PIP_NO_INDEX`` make sure of that). Every
other key (entry, always_run, pass_filenames, files, ...) is the shipped one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from registry.export.smoke import add_smoke
from registry.precommit import registry_touched
from registry.store.document import init_registry

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(tmp / "pre-commit-home"),
        "PIP_NO_INDEX": "1",
        "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
        "HOME": str(tmp / "home"), "GIT_CONFIG_NOSYSTEM": "1",
        "PYTHONPATH": str(REPO),
    })
    return env


def git(repo: Path, *args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {p.stdout}{p.stderr}")
    return p


def local_config(hook_args: list[str] | None = None) -> str:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    local = []
    for h in hooks:
        h = dict(h)
        h["language"] = "unsupported"  # no environment to build: the entry is this venv's tinyreg
        h.pop("additional_dependencies", None)
        h["verbose"] = True  # show the hook's own line even when it passes (it says whether it skipped)
        if hook_args:
            h["args"] = hook_args
        local.append(h)
    return yaml.safe_dump({"repos": [{"repo": "local", "hooks": local}]}, sort_keys=False)


def _make_repo(tmp: Path) -> Path:
    """A git repository holding a DISTS smoke registry, the hook installed, and one commit the hook let through."""
    if shutil.which("git") is None:
        pytest.fail("git is needed (it is on every machine this project runs on)")
    env = _env(tmp)
    (tmp / "home").mkdir()
    r = tmp / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main", env=env)
    git(r, "config", "user.email", "t@example.invalid", env=env)
    git(r, "config", "user.name", "t", env=env)
    add_smoke(init_registry(r / "model" / "tiny"), "dists")
    (r / ".pre-commit-config.yaml").write_text(local_config())
    (r / "README.txt").write_text("hello\n")
    p = subprocess.run([str(BIN / "pre-commit"), "install"], cwd=r, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    git(r, "add", "-A", env=env)
    first = git(r, "commit", "-q", "-m", "registry", env=env, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    nothing_downloaded(tmp)
    return r


@pytest.fixture(scope="module")
def repo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made once per module (pre-commit's first run is most of a test's time); every test gets a copy."""
    return _make_repo(tmp_path_factory.mktemp("precommit-template"))


@pytest.fixture
def repo(repo_template: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    env = _env(tmp_path)
    (tmp_path / "home").mkdir()
    r = tmp_path / "repo"
    shutil.copytree(repo_template, r, symlinks=True)  # a git work tree and its .git move as a whole (hook included)
    return r, env


def head(r: Path, env: dict[str, str]) -> str:
    return git(r, "rev-parse", "HEAD", env=env).stdout.strip()


def nothing_downloaded(tmp: Path) -> None:
    home = tmp / "pre-commit-home"
    repos = [p for p in home.iterdir() if p.is_dir()] if home.exists() else []
    assert repos == [], f"pre-commit built or cloned something: {repos}"


def test_deleting_a_pinned_file_is_refused(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    r, env = repo
    before = head(r, env)
    git(r, "rm", "-q", "model/tiny/dists_vgg16.onnx", env=env)
    p = git(r, "commit", "-m", "only a deletion", env=env, check=False)
    assert p.returncode != 0, p.stdout + p.stderr
    out = p.stdout + p.stderr
    assert "tinyreg verify" in out and "Failed" in out and "dists_vgg16.onnx" in out
    assert head(r, env) == before  # the commit did not land
    nothing_downloaded(tmp_path)


def test_deleting_the_sidecar_or_renaming_out_is_refused(repo: tuple[Path, dict[str, str]]) -> None:
    r, env = repo
    before = head(r, env)
    git(r, "rm", "-q", "model/tiny/dists_vgg16.json", env=env)
    assert git(r, "commit", "-m", "sidecar gone", env=env, check=False).returncode != 0
    git(r, "reset", "-q", "--hard", env=env)
    git(r, "mv", "model/tiny/dists_vgg16.onnx", "moved.onnx", env=env)  # only the new path is outside
    assert git(r, "commit", "-m", "moved out", env=env, check=False).returncode != 0
    assert head(r, env) == before


def test_unrelated_commit_skips_and_lands(repo: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    r, env = repo
    before = head(r, env)
    (r / "README.txt").write_text("changed\n")
    git(r, "add", "README.txt", env=env)
    p = git(r, "commit", "-m", "docs", env=env, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "skipped, no change under model/tiny/" in p.stdout + p.stderr
    assert head(r, env) != before
    nothing_downloaded(tmp_path)


def test_good_registry_change_lands(repo: tuple[Path, dict[str, str]]) -> None:
    r, env = repo
    reg = r / "model" / "tiny" / "registry.json"
    doc = json.loads(reg.read_text())
    doc["models"][0]["notes"] = "a note"
    reg.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    # the card is derived from the row: re-render it as a writer would
    from registry.store.card import render_card
    from registry.store.document import read_registry

    entry = read_registry(reg).get("dists_vgg16")
    (r / "model" / "tiny" / "dists_vgg16.md").write_text(render_card(entry))
    git(r, "add", "-A", env=env)
    p = git(r, "commit", "-m", "note", env=env, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Passed" in p.stdout + p.stderr


def test_registry_elsewhere_via_args(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "home").mkdir()
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main", env=env)
    git(r, "config", "user.email", "t@example.invalid", env=env)
    git(r, "config", "user.name", "t", env=env)
    add_smoke(init_registry(r / "models" / "quality"), "dists")
    (r / ".pre-commit-config.yaml").write_text(local_config(["--registry", "models/quality"]))
    subprocess.run([str(BIN / "pre-commit"), "install"], cwd=r, env=env, check=True, capture_output=True)
    git(r, "add", "-A", env=env)
    assert git(r, "commit", "-q", "-m", "registry", env=env, check=False).returncode == 0
    git(r, "rm", "-q", "models/quality/dists_vgg16.onnx", env=env)
    p = git(r, "commit", "-m", "deletion", env=env, check=False)
    assert p.returncode != 0 and "dists_vgg16.onnx" in p.stdout + p.stderr
    nothing_downloaded(tmp_path)


def test_registry_touched_decisions(repo: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    r, env = repo
    reg = r / "model" / "tiny" / "registry.json"
    monkeypatch.chdir(r)
    for k in ("PRE_COMMIT_FROM_REF", "PRE_COMMIT_TO_REF"):
        monkeypatch.delenv(k, raising=False)
    t = registry_touched(reg)
    assert t.touched and t.reason == "nothing staged; checking anyway"
    (r / "README.txt").write_text("x\n")
    git(r, "add", "README.txt", env=env)
    assert not registry_touched(reg).touched
    git(r, "rm", "-q", "--cached", "model/tiny/dists_vgg16.md", env=env)
    t = registry_touched(reg)
    assert t.touched and t.paths == ("model/tiny/dists_vgg16.md",)
    git(r, "reset", "-q", env=env)
    # at push time the pushed range decides
    first = head(r, env)
    (r / "README.txt").write_text("y\n")
    git(r, "commit", "-q", "--no-verify", "-am", "docs", env=env)
    monkeypatch.setenv("PRE_COMMIT_FROM_REF", first)
    monkeypatch.setenv("PRE_COMMIT_TO_REF", head(r, env))
    assert not registry_touched(reg).touched


def test_workflow_checks_trust_policy_of_the_base_branch() -> None:
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "tinyreg.yml").read_text())
    jobs = wf["jobs"]
    verify = "\n".join(str(s.get("run", "")) for s in jobs["verify"]["steps"])
    assert 'src="origin/${BASE_REF}:${policy}"' in verify and "TINYREG_TRUST=$RUNNER_TEMP/trust.json" in verify
    policy = "\n".join(str(s.get("run", "")) for s in jobs["trust-policy"]["steps"])
    assert "-- .tinyreg/" in policy and "trust-policy-approved" in str(jobs["trust-policy"])
    assert set(wf[True]["pull_request"]["types"]) >= {"labeled", "unlabeled", "synchronize"}  # yaml 1.1: 'on' is True


def test_git_rm_cached_of_a_pinned_file_is_refused(repo: tuple[Path, dict[str, str]]) -> None:
    """The file stays in the working tree, so a check of the working tree passed; the commit lacks it."""
    r, env = repo
    before = head(r, env)
    git(r, "rm", "-q", "--cached", "model/tiny/dists_vgg16.onnx", env=env)
    assert (r / "model" / "tiny" / "dists_vgg16.onnx").exists()
    p = git(r, "commit", "-m", "untracked model", env=env, check=False)
    assert p.returncode != 0 and "dists_vgg16.onnx" in p.stdout + p.stderr, p.stdout + p.stderr
    assert head(r, env) == before


def test_new_entry_whose_model_is_not_staged_is_refused(repo: tuple[Path, dict[str, str]]) -> None:
    r, env = repo
    before = head(r, env)
    add_smoke(r / "model" / "tiny" / "registry.json", "ssim")
    git(r, "add", "model/tiny/registry.json", "model/tiny/ssim_luma.json", "model/tiny/ssim_luma.md", env=env)
    p = git(r, "commit", "-m", "entry without its model", env=env, check=False)
    assert p.returncode != 0 and "ssim_luma.onnx" in p.stdout + p.stderr, p.stdout + p.stderr
    assert head(r, env) == before
    git(r, "add", "model/tiny/ssim_luma.onnx", env=env)  # the whole entry staged: it lands
    p = git(r, "commit", "-m", "whole entry", env=env, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_partially_staged_registry_is_checked_as_staged(repo: tuple[Path, dict[str, str]]) -> None:
    """A broken registry.json staged, repaired only in the working tree: the commit would hold the broken one."""
    r, env = repo
    reg = r / "model" / "tiny" / "registry.json"
    good = reg.read_text()
    doc = json.loads(good)
    doc["models"][0]["sha256"] = "0" * 64
    reg.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    git(r, "add", "model/tiny/registry.json", env=env)
    reg.write_text(good)
    before = head(r, env)
    p = git(r, "commit", "-m", "broken pin staged", env=env, check=False)
    assert p.returncode != 0, p.stdout + p.stderr
    assert head(r, env) == before
    from registry.precommit import staged_tree

    with staged_tree(reg) as staged:  # what the hook verifies: the index, exported
        assert json.loads(staged.read_text())["models"][0]["sha256"] == "0" * 64
        assert reg.parent not in staged.parents


def test_gitattributes_outside_the_folder_that_rewrites_its_files_is_checked(repo: tuple[Path, dict[str, str]],
                                                                             tmp_path: Path) -> None:
    """A commit that only adds a root ``.gitattributes`` (``*.onnx text eol=crlf``) changes nothing under the
    registry folder as git lists it, yet every checkout of that commit rewrites the pinned model's bytes: the
    hook must not skip it (the fresh clone fails verify)."""
    r, env = repo
    before = head(r, env)
    (r / ".gitattributes").write_text("*.onnx text eol=crlf\n")
    git(r, "add", ".gitattributes", env=env)
    p = git(r, "commit", "-m", "line endings", env=env, check=False)
    clone = tmp_path / "clone"
    if p.returncode == 0:  # what the hook let through: a fresh clone of it fails verify
        git(tmp_path, "clone", "-q", str(r), str(clone), env=env)
        v = subprocess.run([str(BIN / "tinyreg"), "verify", "--registry", str(clone / "model" / "tiny" / "registry.json")],
                           env=env, capture_output=True, text=True)
        assert v.returncode == 0, "the hook passed a commit whose fresh clone fails verify: " + v.stdout + v.stderr
    assert p.returncode != 0 and "dists_vgg16.onnx" in p.stdout + p.stderr, p.stdout + p.stderr
    assert head(r, env) == before
