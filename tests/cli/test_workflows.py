"""The GitHub workflows under zizmor (offline) and actionlint, plus the rules they enforce spelled out."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def test_zizmor_offline_reports_nothing() -> None:
    p = subprocess.run([str(BIN / "zizmor"), "--offline", "--format=json", *map(str, WORKFLOWS)],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr
    findings = json.loads(p.stdout)
    assert findings == [], json.dumps(findings, indent=1)[:4000]


def test_zizmor_pedantic_reports_nothing() -> None:
    p = subprocess.run([str(BIN / "zizmor"), "--offline", "--persona=pedantic", "--format=json", *map(str, WORKFLOWS)],
                       capture_output=True, text=True, cwd=REPO)
    assert json.loads(p.stdout) == [], p.stdout[:4000]


def test_actionlint_clean() -> None:
    p = subprocess.run([str(BIN / "actionlint"), *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr


def test_actions_pinned_by_sha_with_version_comment() -> None:
    for wf in WORKFLOWS:
        text = wf.read_text()
        uses = re.findall(r"uses:\s*(\S+)(.*)", text)
        assert uses, wf
        for ref, rest in uses:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{wf.name}: {ref} is not pinned by commit sha"
            assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", rest), f"{wf.name}: {ref} lacks its '# vX.Y.Z' comment"


def test_permissions_per_job_and_no_persisted_token() -> None:
    for wf in WORKFLOWS:
        doc = yaml.safe_load(wf.read_text())
        assert doc.get("permissions") == {}, f"{wf.name}: workflow-level permissions must be empty"
        for name, job in doc["jobs"].items():
            assert isinstance(job.get("permissions"), dict), f"{wf.name}:{name} must declare its permissions"
            for step in job["steps"]:
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step.get("with", {}).get("persist-credentials") is False, f"{wf.name}:{name}"
        writes = {n for n, j in doc["jobs"].items() if "write" in j["permissions"].values()}
        assert writes <= {"sign"}, f"{wf.name}: only the release signing job may write ({writes})"
