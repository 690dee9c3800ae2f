"""Sessions built from verified bytes."""

__all__ = ["binding", "loader", "ops", "precision", "providers", "trust"]
