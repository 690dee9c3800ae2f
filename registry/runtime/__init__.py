"""Sessions built from verified bytes."""

__all__ = ["loader"]
