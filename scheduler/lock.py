"""One daemon per store (``complaint_core.store.lock``, the ``daemon`` role)."""

from __future__ import annotations

from complaint_core.store import Store
from complaint_core.store.lock import PG_LOCK_IDS, StoreLock

PG_LOCK_ID = PG_LOCK_IDS["daemon"]


class DaemonLock(StoreLock):
    """The scheduler's lock: ``run`` and ``run --once`` never overlap on one store."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, "daemon")
