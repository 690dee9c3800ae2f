"""Property: any bytes as a manifest give pairs or one InputError line, never another exception (issue 16 item 3)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InputError
from registry.scoring.manifest import MAX_FIELD, read_manifest

CELLS = st.one_of(st.text(max_size=20), st.just("a" * (MAX_FIELD + 1)), st.just('"'), st.just("x\x00y"), st.just("#c"))


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.lists(st.lists(CELLS, max_size=4), max_size=6).map(
    lambda rows: "\n".join(",".join(r) for r in rows).encode("utf-8", "surrogatepass"))))
def test_any_manifest_is_pairs_or_one_input_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        m = Path(d) / "m.csv"
        m.write_bytes(data)
        try:
            pairs = read_manifest(m)
        except InputError as exc:
            assert "\n" not in exc.diagnostics()
            return
        assert pairs and all(len(p.pair) <= MAX_FIELD for p in pairs)
        names = [p.pair for p in pairs]
        assert len(names) == len(set(names))
