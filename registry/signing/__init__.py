"""Signing entries and the registry, and verifying them offline."""
