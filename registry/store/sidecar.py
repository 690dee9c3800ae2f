"""VMAFx sidecars (``<model>.json`` beside a model): edited in place by minimal textual changes."""

from __future__ import annotations

import json
import re
from typing import Any

from registry._internal.jsonio import loads_json
from registry.errors import InputError

__all__ = ["patch_sidecar"]


def patch_sidecar(data: bytes, changes: dict[str, Any]) -> bytes | None:
    """Set top-level ``changes`` in a VMAFx sidecar by minimal textual edits, so its own formatting stays.

    None when the sidecar is not a JSON object or the edit would not be exactly those changes.
    """
    try:
        text = data.decode("utf-8")
        doc = loads_json(text, "sidecar")
    except (UnicodeDecodeError, InputError):
        return None
    if not isinstance(doc, dict):
        return None
    want = {**doc, **changes}
    current: dict[str, Any] = doc
    for key, value in changes.items():
        if key not in doc:
            return None
        old = re.escape(json.dumps(doc[key], ensure_ascii=True))
        new = json.dumps(value, ensure_ascii=True)
        target = {**current, key: value}
        # the same "key": value may also sit in a nested object (an export record's own "opset"): edit only the
        # occurrence whose change is exactly the top-level one
        for m in re.finditer(rf'("{re.escape(key)}"\s*:\s*){old}(?=\s*[,}}\n])', text):
            candidate = text[:m.start()] + m.group(1) + new + text[m.end():]
            try:
                if loads_json(candidate, "sidecar") == target:
                    text, current = candidate, target
                    break
            except InputError:
                continue
        else:
            return None
    return text.encode("utf-8") if current == want else None
