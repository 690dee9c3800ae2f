from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.errors import InputError
from registry.store.document import read_registry, transaction
from registry.verify import verify_registry
from tests import onnx_factory as f

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "model" / "tiny" / "registry.json"


def checks(report: object) -> set[tuple[str, str]]:
    return {(x.entry, x.check) for x in report.errors}  # type: ignore[attr-defined]


def test_shipped_registry_is_clean(tmp_path: Path) -> None:
    r = verify_registry(SHIPPED)
    assert r.ok, [str(x) for x in r.findings]
    assert r.findings == []
    assert {e["id"] for e in read_registry(SHIPPED).entries} == {"dists_vgg16", "lpips_vgg16", "ssim_luma"}


def test_fresh_registry_clean(reg_path: Path) -> None:
    assert verify_registry(reg_path).ok


def test_changed_byte(reg_path: Path) -> None:
    p = reg_path.parent / "dists_vgg16.onnx"
    data = bytearray(p.read_bytes())
    data[-10] ^= 1
    p.write_bytes(bytes(data))
    assert ("dists_vgg16", "pins") in checks(verify_registry(reg_path))


def test_missing_file(reg_path: Path) -> None:
    (reg_path.parent / "dists_vgg16.onnx").unlink()
    assert ("dists_vgg16", "files") in checks(verify_registry(reg_path))


def test_escaping_path(reg_path: Path) -> None:
    doc = json.loads(reg_path.read_text())
    doc["models"][0]["onnx"] = "../evil.onnx"
    reg_path.write_text(json.dumps(doc))
    r = verify_registry(reg_path)
    assert ("dists_vgg16", "paths") in checks(r)
    assert ("-", "schema") in checks(r)


def test_duplicate_ids(reg_path: Path) -> None:
    doc = json.loads(reg_path.read_text())
    doc["models"].append(dict(doc["models"][0]))
    reg_path.write_text(json.dumps(doc))
    assert ("dists_vgg16", "ids") in checks(verify_registry(reg_path))


def test_unlisted_artifact(reg_path: Path) -> None:
    shutil.copy(reg_path.parent / "dists_vgg16.onnx", reg_path.parent / "stray.onnx")
    assert ("-", "unlisted") in checks(verify_registry(reg_path))


def test_stale_and_missing_card(reg_path: Path) -> None:
    card = reg_path.parent / "dists_vgg16.md"
    card.write_text(card.read_text() + "edited\n")
    assert ("dists_vgg16", "card") in checks(verify_registry(reg_path))
    card.unlink()
    assert ("dists_vgg16", "card") in checks(verify_registry(reg_path))


def test_opset_and_io_disagree(reg_path: Path) -> None:
    with transaction(reg_path) as reg:
        e = reg.get("dists_vgg16")
        e["opset"] = 18
        e["io"]["inputs"][0]["name"] = "reference"
    found = checks(verify_registry(reg_path))
    assert ("dists_vgg16", "opset") in found
    assert ("dists_vgg16", "io") in found


def test_smoke_flag_inconsistent(reg_path: Path) -> None:
    with transaction(reg_path) as reg:
        e = reg.get("dists_vgg16")
        e["smoke"] = False
    found = checks(verify_registry(reg_path))
    assert ("dists_vgg16", "smoke") in found  # sidecar says smoke, no exporter provenance


def test_allowlist_violation_in_registry(reg_path: Path) -> None:
    from registry.store.entries import write_entry

    m = f.custom_relu()
    fields = dict(read_registry(reg_path).get("dists_vgg16"))
    fields.update({"id": "evil", "onnx": "evil.onnx", "files": None, "sha256": "0" * 64})
    fields["io"] = {"inputs": [{"name": "x", "dtype": "float32", "shape": [1, 4]}],
                    "outputs": [{"name": "y", "dtype": "float32", "shape": [1, 4]}]}
    write_entry(reg_path, fields, {"evil.onnx": m.SerializeToString()})
    r = verify_registry(reg_path)
    assert ("evil", "allowlist:fp32") in checks(r)
    assert any("reuses the standard name" in x.message for x in r.errors)


def test_unreadable_registry(tmp_path: Path) -> None:
    p = tmp_path / "registry.json"
    p.write_text("{nope")
    with pytest.raises(InputError, match="malformed JSON"):
        verify_registry(p)


def test_vmafx_registry_read_only_and_true_state(vmafx_copy: Path) -> None:
    folder = vmafx_copy.parent
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    r = verify_registry(vmafx_copy)
    after = {p.name: p.read_bytes() for p in folder.iterdir()}  # nothing added, not even a lock file
    assert before == after
    assert r.schema_version == 1 and r.entries == 24
    msgs = [(x.entry, x.message) for x in r.errors]
    # real problems of that registry, found by reading it as it is
    assert any(e == "fastdvdnet_pre" and "missing" in m for e, m in msgs)
    assert any(e == "transnet_v2" and "missing" in m for e, m in msgs)
    assert any(e == "vmaf_tiny_v1_medium" and "mlp_medium_final.onnx.data is missing" in m for e, m in msgs)
    assert any(e == "nr_metric_v1" and "opset 17 but the graph imports 18" in m for e, m in msgs)
    assert any(e == "vmaf_tiny_v1" and "not pinned" in m for e, m in msgs)
    assert any(e == "smoke_v0" and "sigstore_bundle" in m for e, m in msgs)
    assert not r.ok
    # the schema accepts the format as it is
    assert not any(x.check == "schema" for x in r.findings)
    # entries whose files are all present and consistent produce no pin errors
    assert not any(x.entry == "vmaf_tiny_v3" and x.check == "pins" for x in r.errors)


def test_hostile_paths_are_findings_not_crashes(reg_path: Path) -> None:
    doc = json.loads(reg_path.read_text())
    doc["models"][0]["id"] = "../../evil"
    doc["models"][0]["files"].append({"path": "../../etc/passwd", "role": "calibration", "sha256": "0" * 64, "size": 1})
    doc["models"][0]["sigstore_bundle"] = "/etc/x.sigstore.json"
    doc["signing"] = {"mode": "key", "public_key": "../k.pem"}
    reg_path.write_text(json.dumps(doc))
    r = verify_registry(reg_path)
    paths = [x.message for x in r.errors if x.check == "paths"]
    assert len(paths) == 4, paths
    assert not r.ok


def test_table_output_is_literal(reg_path: Path) -> None:
    import os
    import subprocess
    import sys

    doc = json.loads(reg_path.read_text())
    doc["models"][0]["id"] = "[bold]x"
    reg_path.write_text(json.dumps(doc))
    p = subprocess.run([sys.executable, "-m", "registry", "verify", "--registry", str(reg_path)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"})
    assert p.returncode == 1 and "[bold]x" in p.stdout and "^[a-z0-9][a-z0-9_-]*$" in p.stdout


_scalars = st.none() | st.booleans() | st.integers(-5, 30) | st.sampled_from(
    ["", "x", "../a", "/etc/passwd", "a/b.onnx", "dists_vgg16.onnx", "0" * 64, "fp32", "static", "key", "keyless"]
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["path", "role", "sha256", "size", "name", "mode", "public_key", "inputs", "outputs"]), inner, max_size=3),
    max_leaves=8)
_entry = st.dictionaries(
    st.sampled_from(["id", "kind", "onnx", "sha256", "opset", "smoke", "files", "io", "int8_sha256", "quant_mode",
                     "sigstore_bundle", "family", "input_conventions", "provenance", "quant_calibration_set"]),
    _values, max_size=8)


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("TINYREG_FUZZ_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(version=st.sampled_from([0, 1, 2, 3, "2", None]), models=st.lists(_entry | _scalars, max_size=3),
       signing=st.none() | _values)
def test_verify_never_crashes(tmp_path: Path, version: object, models: list[object], signing: object) -> None:
    from registry.errors import Error

    folder = tmp_path / "fuzz"
    if not folder.exists():  # real artifacts, so the file, graph and sidecar checks run too
        shutil.copytree(REPO / "model" / "tiny", folder, ignore=shutil.ignore_patterns(".*", "registry.json"))
    doc: dict[str, object] = {"schema_version": version, "models": models}
    if signing is not None:
        doc["signing"] = signing
    p = folder / "registry.json"
    p.write_text(json.dumps(doc))
    try:
        r = verify_registry(p)
    except Error:
        return
    assert isinstance(r.ok, bool)


def test_a_hand_edited_int8_gate_record_is_a_finding(tmp_path: Path) -> None:
    """A passed int8 record whose budget was raised past the entry's: verify says what scoring refuses."""
    import shutil

    from tests.conftest import REPO

    reg = Path(shutil.copytree(REPO / "model" / "tiny", tmp_path / "tiny")) / "registry.json"
    doc = json.loads(reg.read_text())
    gate = next(e for e in doc["models"] if e["id"] == "dists_vgg16")["quant"]["gate"]
    gate.update(budget=0.9, drop_ci95=[0.5, 0.8])
    reg.write_text(json.dumps(doc, indent=2) + "\n")
    quant = [f for f in verify_registry(reg).errors if f.check == "quant"]
    assert len(quant) == 1 and "looser than the entry's" in quant[0].message
