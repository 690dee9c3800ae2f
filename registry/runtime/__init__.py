"""Sessions built from verified bytes."""
