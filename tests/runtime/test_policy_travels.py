"""One policy object travels with the work: resolved once by the driver, enforced by every worker, local or Ray."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from registry.errors import SignatureError
from registry.scoring.dataset import DatasetOptions, prepare, score_dataset
from registry.scoring.engines import PairWorker
from registry.signing.policy import load_policy, policy_document, write_policy
from tests.factories import invoke_cli as cli
from tests.factories import keypair
from tests.video_factory import write_y4m_planes, yuv_frames

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir()
    _, pub = keypair(keys, "consumer")
    out = keys / "trust.json"
    write_policy(out, keys=[pub])
    return out


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    write_y4m_planes(d / "r.y4m", yuv_frames(1, 32, 24, "yuv420p", seed=1), "yuv420p")
    write_y4m_planes(d / "d.y4m", yuv_frames(1, 32, 24, "yuv420p", seed=2), "yuv420p")
    (d / "pairs.csv").write_text("ref,dist,pair\nr.y4m,d.y4m,p0\n")
    return d / "pairs.csv"


def test_the_worker_enforces_the_policy_it_is_given_not_its_environment(reg_path: Path, policy: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, _, _ = prepare(reg_path, "dists_vgg16", DatasetOptions(workers=1))
    assert cfg.trust is None
    shipped = replace(cfg, trust=policy_document(load_policy(policy)))
    monkeypatch.delenv("TINYREG_TRUST", raising=False)  # a node without the driver's environment
    with pytest.raises(SignatureError):
        PairWorker(shipped)
    policy.unlink()  # and without the driver's files: the document itself travelled, not its path
    with pytest.raises(SignatureError):
        PairWorker(shipped)


def test_the_driver_checks_the_policy_before_any_worker_starts(reg_path: Path, policy: Path, manifest: Path,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r.jsonl"
    with pytest.raises(SignatureError):
        score_dataset("dists_vgg16", manifest, out, DatasetOptions(workers=2, cores=2, trust=policy), registry=reg_path)
    assert not out.exists()
    for args in (["--manifest", str(manifest), "--out", str(out)], [str(manifest.parent / "r.y4m"), str(manifest.parent / "d.y4m")]):
        code, _, err = cli("score", "dists_vgg16", *args, "--registry", str(reg_path), "--trust", str(policy))
        assert code == 1 and "sign" in err, err
    monkeypatch.setenv("TINYREG_TRUST", " ")
    code, _, err = cli("score", "dists_vgg16", "--manifest", str(manifest), "--out", str(out), "--registry", str(reg_path))
    assert code == 2 and "empty" in err, err
    assert not out.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


WORKER_SIDE = """
import sys
from dataclasses import replace
from pathlib import Path
from registry.scoring.dataset import DatasetOptions, prepare
from registry.scoring.engines import run_ray
from registry.scoring.manifest import read_manifest
from registry.signing.policy import load_policy, policy_document
reg, manifest, policy, address = sys.argv[1:5]
cfg, _, _ = prepare(Path(reg), "dists_vgg16", DatasetOptions(workers=1))  # the driver check, passed without a policy
cfg = replace(cfg, threads=1, trust=policy_document(load_policy(policy)))  # the policy shipped to the actors only
try:
    outcomes = list(run_ray(cfg, read_manifest(Path(manifest)), 1, address))
except Exception as exc:
    print("REFUSED", type(exc).__name__, exc)
    sys.exit(0)
print("SCORED", [o.error for o in outcomes])
"""


@pytest.mark.slow
def test_ray_cluster_joined_by_address_enforces_the_drivers_policy(reg_path: Path, policy: Path, manifest: Path,
                                                                    tmp_path: Path) -> None:
    """The attack: TINYREG_TRUST set on the driver only, `--engine ray --ray-address` scored an unsigned registry, exit 0."""
    pytest.importorskip("ray", reason="the ray engine needs the 'scale' extra (pip install 'tinyreg[scale]')")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="tr", dir="/tmp")  # short: Ray's unix sockets live under it
    env = {k: v for k, v in os.environ.items() if k != "TINYREG_TRUST"}  # the cluster never sees the policy
    env["PYTHONPATH"] = str(REPO)
    # loopback only: Ray otherwise swaps 127.0.0.1 for the machine's network address, and a token left in
    # ~/.ray by another cluster on this machine must not decide whether ours can be joined
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env["RAY_AUTH_MODE"] = "disabled"
    ray_bin = Path(sys.executable).parent / "ray"
    head = subprocess.Popen([str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             "--node-ip-address=127.0.0.1",
                             f"--temp-dir={temp}", "--disable-usage-stats", "--block"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None and time.monotonic() < deadline, "the Ray head did not start"
            time.sleep(0.5)
        address = f"127.0.0.1:{port}"
        out = tmp_path / "r.jsonl"
        p = subprocess.run([sys.executable, "-m", "registry", "score", "dists_vgg16", "--manifest", str(manifest), "--out", str(out),
                            "--engine", "ray", "--ray-address", address, "--registry", str(reg_path), "--workers", "1"],
                           env={**env, "TINYREG_TRUST": str(policy)}, capture_output=True, text=True, timeout=300)
        assert p.returncode == 1 and "sign" in p.stderr, (p.returncode, p.stdout, p.stderr[-2000:])
        assert not out.exists()
        # the actors themselves: given the policy document, they refuse on a node whose environment has none
        w = subprocess.run([sys.executable, "-c", WORKER_SIDE, str(reg_path), str(manifest), str(policy), address],
                           env=env, capture_output=True, text=True, timeout=120)
        assert "REFUSED SignatureError" in w.stdout, (w.stdout, w.stderr[-3000:])
    finally:
        try:  # the head we started, and the processes of its group (never `ray stop`: others' clusters live here too)
            os.killpg(head.pid, signal.SIGTERM)
            head.wait(timeout=5)  # a head often spends 30 s shutting down gracefully: the group is killed instead
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def test_quant_commands_take_the_policy_too(tmp_path: Path, policy: Path) -> None:
    """quantize and quant-gate run models: under a consumer policy an unsigned registry is refused before any work."""
    root = tmp_path / "shipped"
    shutil.copytree(REPO / "model" / "tiny", root)
    reg = root / "registry.json"
    for args in (["quant-gate", "dists_vgg16"], ["quant-gate", "--all"], ["quantize", "dists_vgg16"]):
        code, _, err = cli(*args, "--registry", str(reg), "--trust", str(policy))
        assert code == 1 and "sign" in err, (args, code, err)


def test_quant_library_calls_take_the_policy_too(tmp_path: Path, policy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check lives in the library, not only in the CLI: gate() and quantize_entry() given a policy, or finding
    one in TINYREG_TRUST, refuse an unsigned registry before any model runs, and write nothing."""
    from registry.quant.quantize import quantize_entry
    from registry.quant.run import gate
    from tests.factories import snapshot

    root = tmp_path / "shipped"
    shutil.copytree(REPO / "model" / "tiny", root)
    reg = root / "registry.json"
    before = snapshot(root)
    for call in (lambda: gate(reg, "dists_vgg16", trust=policy), lambda: gate(reg, None, record=True, trust=policy),
                 lambda: quantize_entry(reg, "dists_vgg16", trust=policy),
                 lambda: quantize_entry(reg, "dists_vgg16", mode="fp16", trust=policy)):
        with pytest.raises(SignatureError):
            call()
    monkeypatch.setenv("TINYREG_TRUST", str(policy))  # the consumer's environment, as registry.load reads it
    with pytest.raises(SignatureError):
        gate(reg, None)
    assert snapshot(root) == before


def test_a_pool_worker_that_refuses_fails_the_run_with_that_error(reg_path: Path, policy: Path, manifest: Path,
                                                                  tmp_path: Path) -> None:
    """The registry changes between the driver's check and a worker's load (here: the policy reaches only the
    workers): the process pool's refusal ends the run as that tinyreg error, not as a broken pool (exit 70)."""
    from registry.scoring.engines import run_local
    from registry.scoring.manifest import read_manifest

    cfg, _, _ = prepare(reg_path, "dists_vgg16", DatasetOptions(workers=2))
    shipped = replace(cfg, threads=1, trust=policy_document(load_policy(policy)))
    specs = read_manifest(manifest)
    with pytest.raises(SignatureError):
        list(run_local(shipped, [specs[0], replace(specs[0], index=1, pair="again")], 2))


def test_quant_gate_under_a_policy_regates_a_sibling_whose_recorded_gate_failed(tmp_path: Path) -> None:
    """The gate judges a sibling whatever its record says: a policy check must not demand a passed gate first."""
    import json

    from registry.signing.sign import sign_entries
    from tests.factories import make_signed

    s = make_signed(tmp_path)
    doc = s.doc()
    s.row(doc)["quant"]["gate"]["passed"] = False
    s.write_doc(doc)
    sign_entries(s.reg, None, key=s.priv)
    code, out, err = cli("quant-gate", "dists_vgg16", "--registry", str(s.reg), "--trust", str(s.policy), "--json")
    assert code in (0, 1) and "refusing to score" not in err, (code, err)
    assert json.loads(out)["results"][0]["entry"] == "dists_vgg16"


def test_parity_checks_the_policy_before_any_reference_work(reg_path: Path, policy: Path, tmp_path: Path) -> None:
    """parity under a consumer policy: an unsigned registry is refused before the family, its reference or a weight
    file is touched (before, the reference was built from the unchecked row first)."""
    code, _, err = cli("parity", "dists_vgg16", "--registry", str(reg_path), "--trust", str(policy),
                       "--weight", f"vgg16={tmp_path / 'no-such-weights.pth'}")
    assert code == 1 and "sign" in err and "no-such-weights" not in err, (code, err)
