"""Private helpers; no stability promise."""

__all__ = ["atomic", "hashing", "jsonio", "paths"]
