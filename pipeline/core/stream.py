"""Streaming helpers: a reader thread behind a bounded queue, and batching.

The reader never blocks forever: every ``put`` has a timeout and checks a stop event, so an
exception downstream (or the consumer simply stopping) always lets the thread finish.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Raised:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(source: Iterable[T], maxsize: int = 16, poll_s: float = 0.1) -> Iterator[T]:
    """Iterate ``source`` in a background thread, at most ``maxsize`` items ahead.

    Exceptions raised by the source re-raise in the consumer. Closing the generator (or an
    exception in the consumer) stops the thread within ``poll_s``.
    """
    buf: queue.Queue[object] = queue.Queue(maxsize=maxsize)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buf.put(item, timeout=poll_s)
                return True
            except queue.Full:
                continue
        return False

    def worker() -> None:
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as exc:
            put(_Raised(exc))
            return
        put(_DONE)

    thread = threading.Thread(target=worker, name="prowl-reader", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = buf.get(timeout=poll_s)
            except queue.Empty:
                if not thread.is_alive() and buf.empty():
                    return
                continue
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5.0)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` consecutive items; the last may be shorter."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
