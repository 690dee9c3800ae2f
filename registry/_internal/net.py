"""Host names: the one loopback test behind plain-http exceptions (weight fetches, OCI transport)."""

from __future__ import annotations

import ipaddress


def is_loopback_name(name: str | None) -> bool:
    """Whether a bare host name or address (no port, no brackets) is this machine's loopback."""
    if not name:
        return False
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
