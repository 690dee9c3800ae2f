"""The registry file model: layout, document, pins, the one writer, sidecars, cards, schema."""

__all__ = ["card", "commit", "document", "entries", "layout", "licenses", "pins", "repin", "schema"]
