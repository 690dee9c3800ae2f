"""The ray engine: actors sized from the cluster's CPUs, failures as one line (issue 16 item 3)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from registry.errors import CheckFailed, Error, RegistryNotFound, UsageError
from registry.scoring.engines import ScoreConfig, _ray_failure, ray_plan, run_ray
from registry.scoring.manifest import PairSpec


@pytest.mark.parametrize(("cpus", "workers", "threads", "plan"), [
    (1.0, 4, 4, (1, 1.0)),  # a 1-CPU cluster asked for 4 actors of 4 threads: one actor of 1 CPU, not a hang
    (8.0, 2, 4, (2, 4.0)),
    (8.0, 4, 4, (2, 4.0)),
    (3.0, 8, 1, (3, 1.0)),
    (0.5, 2, 2, (1, 0.5)),
])
def test_ray_plan_fits_the_cluster(cpus: float, workers: int, threads: int, plan: tuple[int, float]) -> None:
    assert ray_plan(cpus, workers, threads) == plan


def test_ray_plan_refuses_a_cluster_without_cpus() -> None:
    with pytest.raises(UsageError, match="no CPUs"):
        ray_plan(0.0, 1, 1)


def test_ray_failure_keeps_tinyreg_errors_and_words_others_in_one_line() -> None:
    inner = RegistryNotFound("x/registry.json: no registry file there")

    class RayTaskError(Exception):
        def __init__(self) -> None:
            super().__init__("ray::RayPairScorer.__init__()\n  File ...\n" * 30)
            self.cause = inner

    assert _ray_failure(RayTaskError()) is inner
    other = _ray_failure(RuntimeError("actor died unexpectedly\n" + "traceback line\n" * 98))
    assert isinstance(other, CheckFailed) and other.exit_code == 1
    assert other.diagnostics() == "the ray engine failed (RuntimeError: actor died unexpectedly)"


@pytest.mark.slow
def test_ray_cluster_smaller_than_asked_and_actor_failure(reg_path: Path, tmp_path: Path) -> None:
    """A running 1-CPU cluster, 2 actors of 4 threads asked: scheduled (one actor of 1 CPU); an actor that cannot
    start (its registry is gone) ends the run with the actor's own one line, not a hang or Ray's traceback."""
    ray = pytest.importorskip("ray", reason="the 'scale' extra (Ray Data) runs --engine ray")
    from tests.video_factory import write_y4m_planes, yuv_frames

    write_y4m_planes(tmp_path / "a.y4m", yuv_frames(2, 32, 24, "yuv420p", seed=1), "yuv420p")
    pairs = [PairSpec(0, "p", tmp_path / "a.y4m", tmp_path / "a.y4m")]
    cfg = ScoreConfig(str(reg_path), "dists_vgg16", "dists", threads=4)
    ray.init(num_cpus=1, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False, configure_logging=False)
    import logging

    pytest.importorskip("ray.data")  # importing it sets its logger's level: the caller's choice comes after
    logging.getLogger("ray.data").setLevel(logging.INFO)  # the caller's choice, which a run must leave as it was
    try:
        outs = list(run_ray(cfg, pairs, workers=2))
        assert logging.getLogger("ray.data").level == logging.INFO
        assert len(outs) == 1 and outs[0].error is None and len(outs[0].scores) == 2
        gone = replace(cfg, registry=str(tmp_path / "nowhere" / "registry.json"))
        before = {t.ident for t in threading.enumerate()}
        with pytest.raises(Error) as err:
            list(run_ray(gone, pairs, workers=1))
        assert "\n" not in err.value.diagnostics() and len(err.value.diagnostics()) < 400
        # the failed run stopped Ray Data's executor: no thread of it is left to reach Ray after ray.shutdown()
        # (one that did ended the whole process: Ray exits it when its shut-down core worker is touched)
        time.sleep(0.5)
        left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
        assert not [n for n in left if "Executor" in n or "Prefetch" in n or "format_batches" in n.lower()], left
    finally:
        ray.shutdown()


CRASHER = '''
import os
if os.environ.get("TINYREG_TEST_CRASH_PAIR"):  # this test's Ray workers only: the pair named kills the process
    import registry.scoring.engines as _engines
    _run = _engines.PairWorker.run
    def run(self, spec):
        if spec.pair == os.environ["TINYREG_TEST_CRASH_PAIR"]:
            os._exit(3)  # as a decoder's segfault or the OOM killer ends an actor: no exception, no cleanup
        return _run(self, spec)
    _engines.PairWorker.run = run
'''


@pytest.mark.slow
def test_a_pair_that_kills_its_actor_ends_the_run_in_one_line_and_a_rerun_resumes(reg_path: Path, tmp_path: Path) -> None:
    """Ray Data restarted a dead actor and retried its task for ever: one pair that crashes the process hung
    `tinyreg score --engine ray` (killed by a 120 s timeout here before max_restarts=0). Now: one line, exit 1,
    the pairs scored so far kept, and the same command without the crash resumes and finishes."""
    import os
    import subprocess
    import sys

    pytest.importorskip("ray", reason="the 'scale' extra (Ray Data) runs --engine ray")
    from tests.conftest import REPO
    from tests.video_factory import write_y4m_planes, yuv_frames

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(CRASHER)
    for i in range(3):
        write_y4m_planes(tmp_path / f"r{i}.y4m", yuv_frames(1, 32, 24, "yuv420p", seed=i), "yuv420p")
    (tmp_path / "m.csv").write_text("ref,dist,pair\nr0.y4m,r1.y4m,p0\nr1.y4m,r2.y4m,poison\nr2.y4m,r0.y4m,p2\n")
    out = tmp_path / "o.jsonl"
    cmd = [sys.executable, "-m", "registry", "score", "dists_vgg16", "--manifest", str(tmp_path / "m.csv"), "--out", str(out),
           "--engine", "ray", "--workers", "1", "--registry", str(reg_path)]
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}", "TINYREG_TEST_CRASH_PAIR": "poison"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    lines = [x for x in p.stderr.splitlines() if x.strip() and "SMOKE PLACEHOLDER" not in x]
    assert lines == ["tinyreg: the ray engine failed (ActorDiedError: The actor died unexpectedly before finishing this task.)"], \
        p.stderr[-3000:]
    env.pop("TINYREG_TEST_CRASH_PAIR")
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    pairs = [json.loads(x).get("pair") for x in out.read_text().splitlines()]
    assert sorted({x for x in pairs if x}) == ["p0", "p2", "poison"]
