"""Producing entries: smoke placeholders, real exports from pinned weights, parity."""

__all__ = ["core", "fetch", "parity", "smoke"]
