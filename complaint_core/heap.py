"""How a process keeps or gives back the memory it frees (glibc only): a child keeps it for
its next file or shop; the merging process gives its big blocks back.

A reader child reads one shop's file after another, and a piece maker makes one shop after
another; each frees the last one's rows before taking the next. glibc hands freed memory back
to the system as soon as it can (the top of its heap past 128 KiB, and big blocks that it
mapped apart), so each file and each shop faulted the same pages in again: 1,600 page faults
a shop of 1,000 complaints, a tenth of a maker's time and a twentieth of a reader's
(issue 17). A child lives for one merge and its peak is what the largest file or shop needs
either way: it now keeps what it freed until it ends.

The merging process itself (the daemon, which lives on between merges) does the opposite
with big blocks: it gives them back as soon as it frees them (``give_back_big_blocks``).

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


def _mallopt(settings: list[tuple[int, int]]) -> bool:
    """Each (parameter, value) through glibc's ``mallopt``; True when every one took effect."""
    if not glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt   # the process's own symbols: glibc is loaded
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt answers 1 when it took the value
    return all([mallopt(param, value) == 1 for param, value in settings])


def keep_freed_memory() -> bool:
    """Let this process keep the memory it frees (see above); True when that took effect."""
    return _mallopt([(M_TRIM_THRESHOLD, TRIM_BYTES), (M_MMAP_THRESHOLD, MMAP_BYTES)])


# the size from which the merging process maps a block apart (``give_back_big_blocks``)
BIG_BLOCK = 1 << 20


def give_back_big_blocks() -> bool:
    """The merging process (the daemon, or one merge) gives a block of 1 MiB or more back to
    the system as soon as it frees it; True when that took effect.

    The opposite of a child's setting, for the process that lives on between merges. By
    default glibc raises the size from which it maps a block apart each time it frees such a
    block, up to 32 MiB: after the first big shop file, each file's findings text, each slice
    of its rows and each of the store's batches came from the heap, and the free space left
    between blocks still in use stayed the daemon's. At 10 shops x 30,000 complaints the
    daemon peaked at 179 MiB, 143 with the size fixed at 1 MiB; a merge of 100 x 1,000 took
    as long (issue 17, docs/performance.md)."""
    return _mallopt([(M_MMAP_THRESHOLD, BIG_BLOCK)])


def release_freed() -> bool:
    """Give the memory this process has freed back to the system now (glibc's
    ``malloc_trim``); True when there was glibc to ask. For a child that keeps what it frees
    (``keep_freed_memory``) once it has made something unusually big: what that left in its
    heap would otherwise add to the next big one's peak."""
    if not glibc():
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)
    return True


T = TypeVar("T")


def drained(items: list[T]) -> Iterator[T]:
    """The items of ``items`` in order, each taken out of the list as it is given (the list
    ends empty): a big item (a stored row's JSON, a pickled slice of a file) is freed as soon as
    the caller is done with it, not when the whole list goes."""
    items.reverse()
    while items:
        yield items.pop()
