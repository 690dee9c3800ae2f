"""Decode ahead: frames come from a bounded queue filled by a decoder thread, so the model never waits on the decoder.

The queue holds at most ``depth`` decoded items (a 1080p RGB float32 frame pair is ~50 MB: the bound is
the memory cost). An exception in the decoder is raised in the consumer at the point it happened; a
consumer that stops early (an error, a break) stops the decoder thread too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()
DEFAULT_DEPTH = 2


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[T], depth: int = DEFAULT_DEPTH) -> Iterator[T]:
    """``items`` in order, produced by a background thread at most ``depth`` ahead (``depth`` 0: no thread)."""
    if depth <= 0:
        yield from items
        return
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(x: object) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for x in items:
                if not put(x):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failure(exc))
            return
        put(_DONE)

    t = threading.Thread(target=work, name="tinyreg-decode-ahead", daemon=True)
    t.start()
    try:
        while True:
            x = q.get()
            if x is _DONE:
                return
            if isinstance(x, _Failure):
                raise x.exc
            yield x  # type: ignore[misc]
    finally:
        stop.set()
        t.join(timeout=5)
