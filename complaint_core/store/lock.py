"""One process per store for each role: an OS file lock beside a SQLite file, a session
advisory lock on PostgreSQL.

Two roles, each with its own lock, because the documented set-ups run them apart: ``daemon``
(the scheduler of ``complaint-desk run``: scans, penalties, reminders) and ``sync`` (the folder
watcher of ``sync --watch``, or of ``run`` with [sync] folders). A second watcher on the same
store is what a clerk gets by starting the watcher's shortcut twice: both would read and store
every save and rewrite the same workbook and archives, twice the work on the office PC, with two
processes replacing the same files.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StoreLocked
from .db import Store

# any fixed numbers, the same for every copy of the program: "CDES", "CDET"
PG_LOCK_IDS = {"daemon": 0x43444553, "sync": 0x43444554}
_SUFFIX = {"daemon": ".lock", "sync": ".sync.lock"}
_WHO = {"daemon": "另一个后台进程已在运行 (another daemon uses this store)",
        "sync": "另一个进程已在监视门店文件夹并写入这个存储（sync --watch，或带 [sync] 的 run）"
                "(another folder watcher uses this store)"}


class StoreLock:
    """Held from ``acquire`` to ``release`` (or as a context manager); ``StoreLocked`` when
    another process holds the same role's lock on the same store."""

    def __init__(self, store: Store, role: str = "daemon") -> None:
        if role not in PG_LOCK_IDS:
            raise ValueError(f"unknown lock role {role!r}")
        self.store, self.role = store, role
        self._fh: BinaryIO | None = None
        self._conn: Connection | None = None

    def acquire(self) -> StoreLock:
        url = self.store.engine.url
        if url.get_backend_name() == "postgresql":
            conn = self._conn = self.store.engine.connect()
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LOCK_IDS[self.role]}).scalar():
                conn.close()
                self._conn = None
                raise StoreLocked(f"{url.render_as_string(hide_password=True)}: {_WHO[self.role]}")
            return self
        path = Path(f"{url.database or 'memory'}{_SUFFIX[self.role]}")
        fh = self._fh = open(path, "a+b")  # noqa: SIM115  (held open while the lock is held)
        try:
            if sys.platform == "win32":
                import msvcrt
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            self._fh = None
            raise StoreLocked(f"{path}: {_WHO[self.role]}（锁文件被占用）") from None
        return self

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            # closing gives the session back to the pool with its lock still held: unlock it
            # (a session that is gone has let go of it already)
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_IDS[self.role]})
            except SQLAlchemyError:
                conn.invalidate()
            finally:
                conn.close()
        if self._fh is not None:
            self._fh.close()     # closing releases the OS lock
            self._fh = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
