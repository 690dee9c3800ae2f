"""Scoring images, videos and datasets with a registry entry."""

__all__ = ["dataset", "engines", "manifest", "memory", "results", "score"]
