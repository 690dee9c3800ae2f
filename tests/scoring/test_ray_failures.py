"""The ray engine: actors sized from the cluster's CPUs, failures as one line (issue 16 item 3)."""

from __future__ import annotations

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
