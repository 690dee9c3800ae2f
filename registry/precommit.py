"""Does this commit (or push) touch the registry folder, and what exactly is being committed? The hooks ask git.

pre-commit hands a hook only the files a commit adds, copies, modifies or renames, so its
``files:`` filter never sees a deletion: a commit that only deletes a pinned file would skip a
filtered hook and land. tinyreg's hooks are ``always_run`` instead and decide here, from git
itself, with every kind of change (deletions, type changes, both sides of a rename).

The check then runs on exactly what is being committed: the registry folder as the index holds
it (or as the pushed ref holds it), exported to a temporary folder (``staged_tree``), never the
working tree, where a file removed with ``git rm --cached``, a model never staged, or an
unstaged edit would still be present and pass.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from registry.errors import InputError


@dataclass(frozen=True)
class Touched:
    """Whether the registry folder is changed, the changed paths inside it, and how that was decided."""

    touched: bool
    paths: tuple[str, ...]
    reason: str


def _git_bytes(args: list[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    try:
        p = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=False, check=False, input=stdin)
    except OSError as exc:
        raise InputError(f"cannot run git ({exc.strerror})") from exc
    if p.returncode != 0:
        msg = p.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InputError(f"git {' '.join(args[:2])}: {msg[-1] if msg else 'failed'}")
    return p.stdout


def _git(args: list[str], cwd: Path) -> str:
    return _git_bytes(args, cwd).decode("utf-8", "surrogateescape")


def changed_paths(repo: Path) -> list[str]:
    """Paths (relative to the repository root) of this commit's staged changes, or of the pushed
    range when pre-commit runs at push time (``PRE_COMMIT_FROM_REF``/``PRE_COMMIT_TO_REF``).

    ``--no-renames`` reports a rename as a deletion and an addition, so a file moved out of the
    registry folder counts for the folder; no ``--diff-filter``: deletions and type changes count.
    """
    src, dst = os.environ.get("PRE_COMMIT_FROM_REF"), os.environ.get("PRE_COMMIT_TO_REF")
    args = ["diff", "--name-only", "--no-renames", "-z"]
    args += [src, dst] if src and dst else ["--cached"]
    return [p for p in _git(args, repo).split("\0") if p]


def registry_touched(registry_json: Path) -> Touched:
    """Whether the changes being committed touch the folder of ``registry_json``.

    Anything uncertain counts as touched: no git repository, a registry folder outside the
    repository, or nothing staged at all (``pre-commit run --all-files``, an amend of the
    message only): the check then runs.
    """
    folder = registry_json.resolve().parent
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], folder).strip()).resolve()
    except InputError as exc:
        return Touched(True, (), f"cannot ask git ({exc}); checking anyway")
    try:
        rel = folder.relative_to(top).as_posix()
    except ValueError:
        return Touched(True, (), f"{folder} is outside the repository {top}; checking anyway")
    paths = changed_paths(top)
    if not paths:
        return Touched(True, (), "nothing staged; checking anyway")
    prefix = "" if rel == "." else rel + "/"
    # a .gitattributes above the folder decides how its files are checked out (`*.onnx text eol=crlf` rewrites
    # every pinned model in each fresh clone): changing one changes the folder as any checkout holds it
    inside = tuple(p for p in paths if p.startswith(prefix) or (
        p.rsplit("/", 1)[-1] == ".gitattributes" and prefix.startswith(p[: -len(".gitattributes")])))
    if inside:
        return Touched(True, inside, f"{len(inside)} changed path(s) under {rel}/")
    return Touched(False, (), f"no change under {rel}/ in {len(paths)} changed path(s)")


@contextlib.contextmanager
def staged_tree(registry_json: Path) -> Iterator[Path]:
    """``registry.json`` inside a temporary export of the registry folder exactly as it is being committed.

    At commit time that is the index (``git checkout-index`` of the folder's staged entries:
    deletions, ``git rm --cached`` and partially staged files as the commit will hold them); at push
    time (``PRE_COMMIT_TO_REF``) the pushed commit's tree (``git archive``). Outside a git repository
    there is nothing staged: the folder itself is checked.
    """
    folder = registry_json.resolve().parent
    try:
        top = Path(_git(["rev-parse", "--show-toplevel"], folder).strip()).resolve()
        rel = folder.relative_to(top).as_posix()
    except (InputError, ValueError):
        yield registry_json
        return
    to_ref = os.environ.get("PRE_COMMIT_TO_REF") if os.environ.get("PRE_COMMIT_FROM_REF") else None
    with tempfile.TemporaryDirectory(prefix="tinyreg-staged-") as tmp:
        out = Path(tmp) / "tree"
        out.mkdir()
        spec = "." if rel == "." else rel
        if to_ref:
            data = _git_bytes(["archive", "--format=tar", to_ref, "--", spec], top)
            try:
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    tar.extractall(out, filter="data")  # nothing outside ``out``, no device files
            except (tarfile.TarError, OSError) as exc:
                raise InputError(f"{to_ref}: cannot export {spec} to check it ({exc})") from exc
        else:
            names = _git_bytes(["ls-files", "-z", "--cached", "--", spec], top)
            if names:
                _git_bytes(["checkout-index", "-z", "--stdin", f"--prefix={out}/"], top, stdin=names)
        target = out / ("" if rel == "." else rel) / registry_json.name
        target.parent.mkdir(parents=True, exist_ok=True)
        yield target
