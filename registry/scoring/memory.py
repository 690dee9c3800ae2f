"""How much memory scoring at a given size needs, and how much the machine has.

A family declares a :class:`~registry.plugin.MemoryModel` (``base + per_pixel * H * W``,
measured peak RSS of one onnxruntime process scoring one pair with tinyreg's session options:
``python -m bench.memory``). Scoring refuses a size whose estimate exceeds the memory available
to this process (``MemAvailable``, lowered by a cgroup v2 limit) or an explicit limit, before
anything large is allocated.
"""

from __future__ import annotations

import re
from pathlib import Path

from registry.errors import InputError, UsageError

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_bytes(text: str) -> int:
    """'512M', '4G', '1.5G', '1000000' -> bytes (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise UsageError(f"not a size: {text!r} (e.g. 512M, 4G)")
    value = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if value <= 0:
        raise UsageError(f"not a positive size: {text!r}")
    return value


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Bytes this process can still allocate without swapping, or None when unknown.

    Linux ``MemAvailable``, lowered to the headroom under this process's cgroup v2
    ``memory.max`` when there is one.
    """
    avail: int | None = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        avail = None
    try:
        rel = next((ln.split(":", 2)[2] for ln in Path("/proc/self/cgroup").read_text().splitlines() if ln.startswith("0::")), None)
    except OSError:
        rel = None
    if rel is not None:
        cg = Path("/sys/fs/cgroup") / rel.strip().lstrip("/")
        limit, used = _read_int(cg / "memory.max"), _read_int(cg / "memory.current")
        if limit is not None and used is not None:
            room = max(0, limit - used)
            avail = room if avail is None else min(avail, room)
    return avail


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def check_memory(needed: int, what: str, max_memory: int | None = None) -> None:
    """InputError when ``needed`` bytes exceed ``max_memory`` (or, without it, the available memory)."""
    if max_memory is not None:
        if needed > max_memory:
            raise InputError(f"{what} needs about {_gib(needed)}, over the limit of {_gib(max_memory)} "
                             "(override: max_memory=)", hint="max_memory")
        return
    avail = available_memory()
    if avail is not None and needed > avail:
        raise InputError(f"{what} needs about {_gib(needed)}, but only {_gib(avail)} is available "
                         "(override: max_memory=)", hint="max_memory")

