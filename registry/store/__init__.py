"""The registry file model: layout, document, pins, the one writer, sidecars, cards, schema."""
