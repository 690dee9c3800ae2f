"""Scoring images, videos and datasets with a registry entry."""
