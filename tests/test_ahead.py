"""A producer run in a thread ahead of its consumer: order, bounds, errors and early stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator

import pytest

from complaint_core.ahead import ahead


def test_items_come_in_order_and_at_most_depth_ahead() -> None:
    made: list[int] = []

    def make(stop: threading.Event) -> Generator[int, None, None]:
        for i in range(10):
            made.append(i)
            yield i

    got = []
    for item in ahead(make, depth=2):
        time.sleep(0.05)   # a slow consumer: the producer waits on the full queue
        # taken: this one; queued: two; in the producer's hand: one
        assert len(made) <= item + 4
        got.append(item)
    assert got == list(range(10))


def test_the_producers_error_is_raised_where_it_happened() -> None:
    def make(stop: threading.Event) -> Generator[int, None, None]:
        yield 1
        yield 2
        raise ValueError("第三个文件坏了")

    got = []
    with pytest.raises(ValueError, match="第三个文件坏了"):
        for item in ahead(make):
            got.append(item)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_ends_the_producer_and_its_cleanup_runs() -> None:
    cleaned = threading.Event()
    threads = threading.active_count()

    def make(stop: threading.Event) -> Generator[int, None, None]:
        try:
            i = 0
            while True:   # endless, as a daemon's reading would be without its stop
                yield i
                i += 1
        finally:
            cleaned.set()

    reading = ahead(make, depth=1)
    assert next(reading) == 0
    reading.close()
    assert cleaned.is_set() and threading.active_count() == threads


def test_a_producer_waiting_on_something_else_is_told_to_stop() -> None:
    # the reader's loop waits on its children, not on the queue: the stop event reaches it
    waiting, saw_stop = threading.Event(), threading.Event()

    def make(stop: threading.Event) -> Generator[int, None, None]:
        yield 1
        waiting.set()
        while not stop.wait(0.05):
            pass
        saw_stop.set()

    for _item in ahead(make):
        assert waiting.wait(5)   # the producer went on to its next item and waits inside it
        break
    assert saw_stop.is_set()


def test_an_error_in_the_consumer_stops_the_producer() -> None:
    cleaned = threading.Event()

    def make(stop: threading.Event) -> Generator[int, None, None]:
        try:
            yield from range(1000)
        finally:
            cleaned.set()

    with pytest.raises(KeyError):
        for item in ahead(make):
            if item == 3:
                raise KeyError(item)
    assert cleaned.is_set()
