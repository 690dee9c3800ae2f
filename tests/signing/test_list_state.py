"""``tinyreg list`` says signed only where verify would find a bundle (issue 16 item 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from registry.signing.state import SIGNED, signature_state
from registry.store.document import read_registry

REPO = Path(__file__).resolve().parents[2]


def listing(reg: Path) -> dict[str, dict[str, object]]:
    p = subprocess.run([sys.executable, "-m", "registry", "list", "--json", "--registry", str(reg)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0, p.stderr
    return {m["id"]: m for m in json.loads(p.stdout)["models"]}


def test_vmafx_bundles_that_do_not_exist_are_not_signed(vmafx_copy: Path) -> None:
    rows = listing(vmafx_copy)
    listed = [eid for eid, m in rows.items() if m["signature"] == "listed, bundle missing"]
    assert "dists_sq_placeholder_v0" in listed
    assert not any(m["signed"] for m in rows.values())  # none of the VMAFx bundles is in the fixture


@pytest.mark.slow
def test_signed_entry_then_bundle_removed_or_changed(reg_path: Path, tmp_path: Path) -> None:
    from registry.signing.sign import set_policy, sign_entries
    from tests.factories import keypair

    priv, pub = keypair(tmp_path, "k")
    set_policy(reg_path, public_key=pub)
    sign_entries(reg_path, None, key=priv)
    assert listing(reg_path)["dists_vgg16"]["signed"] is True
    reg = read_registry(reg_path)
    entry = reg.get("dists_vgg16")
    bundle = reg_path.parent / str(entry["sigstore_bundle"])
    assert signature_state(reg, entry) == SIGNED
    data = bundle.read_bytes()
    bundle.write_bytes(data[:-2] + b" }")
    assert signature_state(reg, entry) == "listed, bundle changed since it was pinned"
    bundle.unlink()
    row = listing(reg_path)["dists_vgg16"]
    assert row["signed"] is False and row["signature"] == "listed, bundle missing"
    os.mkfifo(bundle)
    assert signature_state(reg, entry) == "listed, bundle unreadable"  # a FIFO: refused without blocking
