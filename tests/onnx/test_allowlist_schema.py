"""A bad allowlist file is bad input: exit 2, one line naming the field (issue 16 item 6)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from registry.errors import InputError
from registry.onnx.allowlist import load_allowlist

REPO = Path(__file__).resolve().parents[2]
BUILTIN: dict[str, Any] = json.loads(resources.files("registry.onnx").joinpath("data", "op_allowlist.json").read_text("utf-8"))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"})


def _without_int8(d: dict[str, Any]) -> None:
    del d["profiles"]["int8"]


def _limit_text(d: dict[str, Any]) -> None:
    d["limits"]["initializer_bytes"] = "lots"


def _opset_text(d: dict[str, Any]) -> None:
    d["opset"]["min"] = "seventeen"


def _ops_not_list(d: dict[str, Any]) -> None:
    d["profiles"]["fp32"]["ai.onnx"] = "Conv"


def _inherits_unknown(d: dict[str, Any]) -> None:
    d["profiles"]["int8"]["inherits"] = "fp64"


def _loop(d: dict[str, Any]) -> None:
    d["profiles"]["fp32"]["inherits"] = "int8"


def _min_over_max(d: dict[str, Any]) -> None:
    d["opset"]["min"] = 30


@pytest.mark.slow
@pytest.mark.parametrize(("mutate", "field"), [
    (_without_int8, "profiles: 'int8' is a required property"),
    (_limit_text, "limits/initializer_bytes"),
    (_opset_text, "opset/min"),
    (_ops_not_list, "profiles/fp32/ai.onnx"),
    (_inherits_unknown, "profiles/int8/inherits: no profile 'fp64'"),
    (_loop, "inheritance loop"),
    (_min_over_max, "min is larger than max"),
])
def test_bad_allowlist_is_one_line_exit_2(tmp_path: Path, reg_path: Path, mutate: Any, field: str) -> None:
    doc = copy.deepcopy(BUILTIN)
    mutate(doc)
    f = tmp_path / "allow.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=field.replace("(", r"\(").replace(")", r"\)")):
        load_allowlist(f)
    for cmd in (["verify", "--allowlist", str(f)], ["check-ops", "dists_vgg16", "--allowlist", str(f)]):
        p = cli(*cmd, "--registry", str(reg_path))
        assert p.returncode == 2, (cmd, p.returncode, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and field.split(":")[0] in lines[0], p.stderr


def test_additional_named_profiles_are_allowed(tmp_path: Path) -> None:
    doc = copy.deepcopy(BUILTIN)
    doc["profiles"]["vmafx"] = {"inherits": "fp32", "ai.onnx": ["LSTM"]}
    f = tmp_path / "allow.json"
    f.write_text(json.dumps(doc))
    assert "vmafx" in load_allowlist(f).profile_names()


def test_builtin_validates_and_schema_ships_in_schemas() -> None:
    load_allowlist(None)
    link = REPO / "schemas" / "allowlist.schema.json"
    assert link.is_symlink() and link.resolve() == (REPO / "registry" / "onnx" / "data" / "allowlist.schema.json").resolve()
