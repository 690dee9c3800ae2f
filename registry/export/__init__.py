"""Producing entries: smoke placeholders, real exports from pinned weights, parity."""
