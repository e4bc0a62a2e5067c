"""A child process keeps the memory it frees, for its next file or shop (glibc only).

A reader child reads one shop's file after another, and a piece maker makes one shop after
another; each frees the last one's rows before taking the next. glibc hands freed memory back
to the system as soon as it can (the top of its heap past 128 KiB, and big blocks that it
mapped apart), so each file and each shop faulted the same pages in again: 1,600 page faults
a shop of 1,000 complaints, a tenth of a maker's time and a twentieth of a reader's
(issue 17). A child lives for one merge and its peak is what the largest file or shop needs
either way: it now keeps what it freed until it ends.

``mallopt`` is glibc's public API; this module checks that glibc is the C library before it
uses it, and does nothing anywhere else (Windows, macOS, musl).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from typing import TypeVar

# glibc's malloc.h: the heap top kept free before it is trimmed, and the size from which a
# block is mapped apart (its largest allowed value on 64-bit systems: bigger blocks, a
# whole huge file's worth, still go back to the system when freed)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_BYTES = 128 << 20
MMAP_BYTES = 32 << 20


def glibc() -> bool:
    """Whether this process's C library is glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):   # musl has no such name
        return False


def keep_freed_memory() -> bool:
    """Let this process keep the memory it frees (see above); True when that took effect."""
    if not glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt   # the process's own symbols: glibc is loaded
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt answers 1 when it took the value
    took: list[int] = [mallopt(M_TRIM_THRESHOLD, TRIM_BYTES), mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)]
    return took == [1, 1]


T = TypeVar("T")


def drained(items: list[T]) -> Iterator[T]:
    """The items of ``items`` in order, each taken out of the list as it is given (the list
    ends empty): a big item (a stored row's JSON, a pickled slice of a file) is freed as soon as
    the caller is done with it, not when the whole list goes."""
    items.reverse()
    while items:
        yield items.pop()
