import threading
import time
from collections.abc import Iterator

import pytest

from pipeline.core.stream import batched, prefetch


def test_prefetch_keeps_order_and_batched_sizes() -> None:
    assert list(prefetch(range(100), maxsize=3)) == list(range(100))
    assert [len(b) for b in batched(range(10), 4)] == [4, 4, 2]


def test_source_exception_reaches_consumer() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    it = prefetch(source(), maxsize=2)
    assert next(it) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(it)


def test_reader_stays_bounded_and_stops_when_consumer_stops() -> None:
    produced = []

    def source() -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    it = prefetch(source(), maxsize=4, poll_s=0.01)
    assert next(it) == 0
    time.sleep(0.2)
    assert len(produced) <= 4 + 2  # the queue, one item in hand, one being put
    it.close()  # the consumer gives up (an exception downstream does the same)
    time.sleep(0.1)
    assert not any(t.name == "prowl-reader" and t.is_alive() for t in threading.enumerate())
    assert len(produced) < 10
