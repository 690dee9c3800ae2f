"""Size caps for decoded media (no heavy imports: the CLI reads them for its defaults)."""

from __future__ import annotations

# The default cap on one decoded image or video frame: a little more than 8K UHD
# (7680x4320 = 33.2 Mpx). Decoding such an image as float32 RGB takes 12 bytes a pixel;
# the model needs far more, which registry.scoring.memory checks separately.
DEFAULT_MAX_PIXELS = 36_000_000
