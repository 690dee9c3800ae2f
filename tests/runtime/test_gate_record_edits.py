"""A gate record edited by hand (attacks on issue 18's "refused unless its gate passed"): a record is
checked against the entry, not against itself."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from registry.errors import UsageError
from registry.runtime.precision import check_gate
from tests.conftest import REPO

TINY = REPO / "model" / "tiny" / "registry.json"


def dists() -> dict[str, Any]:
    doc = json.loads(TINY.read_text())
    return copy.deepcopy(next(e for e in doc["models"] if e["id"] == "dists_vgg16"))


def test_shipped_int8_record_passes() -> None:
    check_gate(dists(), "int8")


def test_int8_record_with_a_raised_budget_is_refused() -> None:
    e = dists()
    g = e["quant"]["gate"]
    g.update(budget=0.9, drop=0.6, drop_ci95=[0.5, 0.8])  # entry's quant_accuracy_budget_plcc stays 0.005
    with pytest.raises(UsageError, match=r"looser than the entry.s 0\.005"):
        check_gate(e, "int8")


@pytest.mark.parametrize("field", ["budget", "upper"])
def test_booleans_are_no_gate_statistics(field: str) -> None:
    e = dists()
    g = e["quant"]["gate"]
    if field == "budget":
        g["budget"] = True
    else:
        g["drop_ci95"] = [0.0, False]
    with pytest.raises(UsageError, match="not within"):
        check_gate(e, "int8")


def fp16_entry(**gate: Any) -> dict[str, Any]:
    e = dists()
    e["fp16_sha256"] = "cd" * 32
    e["fp16"] = {"gate": {"passed": True, "budget": 1e-4, "drop_ci95": [0.0, 1e-7], "max_abs_budget": 1e-3,
                          "max_abs_diff": 2e-4, "candidate_sha256": "cd" * 32, "model_sha256": e["sha256"], **gate}}
    return e


def test_fp16_record_with_a_raised_error_limit_is_refused() -> None:
    check_gate(fp16_entry(), "fp16")
    with pytest.raises(UsageError, match=r"looser than the family.s 0\.001"):
        check_gate(fp16_entry(max_abs_budget=0.5, max_abs_diff=0.3), "fp16")
    with pytest.raises(UsageError, match="looser than the entry's"):
        check_gate(fp16_entry(budget=0.5, drop_ci95=[0.1, 0.2]), "fp16")


def test_cli_refuses_an_edited_int8_record_and_leaves_the_registry(tmp_path: Path) -> None:
    reg_path = Path(shutil.copytree(TINY.parent, tmp_path / "tiny")) / "registry.json"
    doc = json.loads(reg_path.read_text())
    e = next(m for m in doc["models"] if m["id"] == "dists_vgg16")
    e["quant"]["gate"].update(budget=0.9, drop_ci95=[0.5, 0.8])
    reg_path.write_text(json.dumps(doc, indent=2) + "\n")
    before = reg_path.read_bytes()
    p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", "a.png", "b.png", "--precision", "int8",
                        "--registry", str(reg_path)], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"})
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "looser than the entry's" in lines[0], p.stderr
    assert reg_path.read_bytes() == before
