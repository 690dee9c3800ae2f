"""The fuzz harness in ``make test``: every format, a fixed seed, about a second each (``make fuzz`` runs it for long)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz_harness import FORMATS, fuzz, isolated_state, mutate

REPO = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("TINYREG_FUZZ_TEST_SECONDS", "0.8"))


@pytest.fixture(scope="module")
def _state() -> Iterator[Path]:
    with isolated_state() as d:
        yield d


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_fuzz_format(name: str, tmp_path: Path, _state: Path) -> None:
    st = fuzz(FORMATS[name], SECONDS, seed=16, work=tmp_path)
    assert st.failures == [], "\n".join(st.failures[:10])
    assert st.cases >= 3, st  # the seeds ran at least
    assert set(st.codes) <= {0, 1, 2}


def test_mutations_reach_every_class() -> None:
    """The mutator produces special files, truncations and JSON structure changes (a harness that only flips bits proves little)."""
    rng = random.Random(0)
    seeds = [b'{"a": [1, 2, {"b": "c"}], "d": 3}']
    out = [mutate(rng, seeds, "json") for _ in range(2000)]
    specials = {o for o in out if isinstance(o, str)}
    assert specials == {"fifo", "devzero", "directory", "socket", "sparse"}
    assert any(isinstance(o, bytes) and len(o) < len(seeds[0]) for o in out)
    assert any(isinstance(o, bytes) and o.count(b"[") > 60 for o in out)


@pytest.mark.slow
def test_the_real_cli_on_mutated_registries(reg_path: Path) -> None:
    """A few subprocess runs: the installed entry point prints one line and exits 0/1/2 on mutated registry documents."""
    rng = random.Random(16)
    seed = reg_path.read_bytes()
    for _ in range(4):
        data = mutate(rng, [seed], "json")
        if isinstance(data, str):
            continue
        reg_path.write_bytes(data)
        p = subprocess.run([sys.executable, "-m", "registry", "verify", "--registry", str(reg_path)], capture_output=True,
                           text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert p.returncode in (0, 1, 2), p.stderr
        if p.returncode == 2:
            assert len(p.stderr.strip().splitlines()) == 1, p.stderr
