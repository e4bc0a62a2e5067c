"""Run a producer in a thread a few items ahead of its consumer.

The daemon stores each shop file the reader children send back. While it stores one (a
transaction, then the disk's sync), a child that finished the next file could not hand its
answer over, and so could not start on another (issue 17). Taking the children's answers in
a thread keeps them reading while the daemon stores. The producer asks for an item only when
fewer than ``depth`` wait to be taken: memory holds the item being stored and at most
``depth`` more, never one more in the producer's hand.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from typing import TypeVar, cast

T = TypeVar("T")

# how often a producer waiting for room looks whether its consumer has gone
_POLL = 0.1


def ahead(make: Callable[[threading.Event], Generator[T, None, None]], depth: int = 1,
          name: str = "complaint-desk-ahead") -> Generator[T, None, None]:
    """Items of ``make(stop)``, produced in a thread up to ``depth`` items ahead.

    ``make`` is given an event that is set when the consumer stops early (it returned, or
    raised): a producer that waits on something else (children, sockets) looks at it now and
    then and returns, so that its own ``finally`` cleans up in its thread. An exception in
    the producer is raised in the consumer, at the item where it happened.
    """
    stop = threading.Event()
    room = threading.Semaphore(max(1, depth))
    # bounded by ``room``: a put never waits
    items: queue.SimpleQueue[tuple[bool, object]] = queue.SimpleQueue()

    def run() -> None:
        source = make(stop)
        try:
            while True:
                while not room.acquire(timeout=_POLL):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(source)
                except StopIteration:
                    items.put((False, None))
                    return
                items.put((True, item))
                del item   # the consumer holds it now; this thread must not keep it alive
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            items.put((False, exc))
        finally:
            source.close()

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    try:
        while True:
            more, item = _take(items)
            room.release()   # taken: the producer may make the next one while this is used
            if not more:
                if item is not None:
                    raise cast(BaseException, item)   # the producer's exception, as it was
                return
            yield cast(T, item)
            del item
    finally:
        stop.set()
        worker.join()


def _take(items: queue.SimpleQueue[tuple[bool, object]]) -> tuple[bool, object]:
    # in short waits: on Windows a wait without a timeout cannot be interrupted by Ctrl+C
    while True:
        try:
            return items.get(timeout=_POLL)
        except queue.Empty:
            continue
