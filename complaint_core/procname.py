"""A name for each kind of Complaint Desk process, as ``ps`` and ``top`` show it.

The daemon starts reading children and piece makers; on a shop PC the one technical person who
looks at what runs sees which is which (``cd-reader``, ``cd-maker``) instead of a row of
identical Python processes, and the benchmark counts each kind's memory apart (issue 17).
Linux lets a process name itself through ``/proc/self/comm``; elsewhere the name stays as it
was.
"""

from __future__ import annotations

__all__ = ["READER", "MAKER", "name_process"]

READER = "cd-reader"
MAKER = "cd-maker"


def name_process(name: str) -> bool:
    """Give this process ``name`` (at most 15 bytes are kept); True where that took effect."""
    try:
        with open("/proc/self/comm", "w", encoding="ascii") as fh:
            fh.write(name[:15])
    except (OSError, UnicodeEncodeError):
        return False
    return True
