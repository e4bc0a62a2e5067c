"""Pause Python's cycle collector while a merge builds millions of short-lived objects.

A merge of 100 shops holds ~100,000 records and builds ~5 million cells. Each container
it allocates counts toward the collector's next pass, and every full pass walks all of them
again: measured on the 100 x 1,000 benchmark, the sheets took 7.8 s to build with the
collector running and 5.1 s with it paused. Rows, cells and records hold no reference
cycles, so reference counting frees them as usual; the few cycles a merge or another thread
does make (inside SQLAlchemy, for one) wait until the last merge in flight ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()
_DEPTH = 0
_WAS_ENABLED = True


@contextmanager
def paused_gc() -> Iterator[None]:
    """Collector off inside the block; back to how it was when the outermost block ends.

    Re-entrant and thread-safe: the daemon may render from its watcher thread while the
    scheduler's job renders too; the collector comes back when both are done.
    """
    global _DEPTH, _WAS_ENABLED
    with _LOCK:
        if _DEPTH == 0:
            _WAS_ENABLED = gc.isenabled()
            gc.disable()
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0 and _WAS_ENABLED:
                gc.enable()
