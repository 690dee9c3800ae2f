"""Property: any Y4M header line parses or is one InputError line (issue 16: a fuzz-style check of the header parser)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InputError
from registry.media.y4m import parse_header

TOKENS = st.sampled_from(["W64", "H48", "W0", "H-1", "W99999999999999", "F25:1", "F0:0", "Ip", "A1:1", "C420jpeg", "C444",
                          "C420p10", "Cmono", "Cbogus", "XCOLORRANGE=FULL", "X", "", "W", "H1e9"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=120), st.lists(TOKENS, max_size=8).map(lambda t: ("YUV4MPEG2 " + " ".join(t) + "\n").encode())))
def test_any_header_parses_or_is_one_input_error(line: bytes) -> None:
    try:
        hdr = parse_header(line, "v.y4m", max_pixels=1 << 24)
    except InputError as exc:
        assert "\n" not in exc.diagnostics()
        return
    assert hdr.width > 0 and hdr.height > 0 and hdr.width * hdr.height <= 1 << 24 and hdr.frame_bytes > 0
