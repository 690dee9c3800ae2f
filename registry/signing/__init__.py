"""Signing entries and the registry, and verifying them offline.

``registry.signing.sign.sign`` (``registry.sign``) is the public entry point; ``methods`` holds the
Signer/Verifier types, one module per method under ``_methods/``.
"""

from __future__ import annotations

__all__ = ["methods", "policy", "sign", "snapshot", "state", "statement", "verify"]
