"""The one JSON reader for documents tinyreg did not write itself.

Registry files, sidecars, signature bundles, signed statements and allowlists all go
through :func:`loads_json`: UTF-8 only, no duplicate keys (which a reader and a
reviewer could resolve differently), no NaN/Infinity, and at most ``MAX_DEPTH``
levels of nesting (deeper documents would exhaust the stack of the validators
that walk them). Each refusal is one ``InputError`` line naming the source.
"""

from __future__ import annotations

import json
from typing import Any

from registry.errors import InputError

MAX_DEPTH = 64


class _Refused(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def depth(doc: Any) -> int:
    """Nesting depth of a parsed document (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            d += 1
            deepest = max(deepest, d)
            if d > MAX_DEPTH:
                return d
            stack.extend((x, d) for x in node if isinstance(x, (dict, list)))
    return deepest


def loads_json(data: bytes | str, source: str) -> Any:
    """Parse one JSON document strictly; ``InputError`` (one line naming ``source``) on anything else."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    else:
        text = data
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except _Refused as exc:
        raise InputError(f"{source}: malformed JSON: {exc}") from exc
    except RecursionError as exc:
        raise InputError(f"{source}: malformed JSON: nested more than {MAX_DEPTH} levels deep") from exc
    if depth(doc) > MAX_DEPTH:
        raise InputError(f"{source}: malformed JSON: nested more than {MAX_DEPTH} levels deep")
    return doc
