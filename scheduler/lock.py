"""One daemon per store: an OS file lock beside a SQLite file, an advisory lock on PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import text
from sqlalchemy.engine import Connection

from complaint_core.errors import StoreLocked
from complaint_core.store import Store

PG_LOCK_ID = 0x43444553  # "CDES": any fixed number, the same for every copy


class DaemonLock:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._fh: BinaryIO | None = None
        self._conn: Connection | None = None

    def acquire(self) -> DaemonLock:
        url = self.store.engine.url
        if url.get_backend_name() == "postgresql":
            conn = self._conn = self.store.engine.connect()
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LOCK_ID}).scalar():
                conn.close()
                self._conn = None
                raise StoreLocked(f"{url.render_as_string(hide_password=True)}: 另一个后台进程已在运行")
            return self
        path = Path(f"{url.database or 'memory'}.lock")
        fh = self._fh = open(path, "a+b")  # noqa: SIM115  (held open for the daemon's lifetime)
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
            raise StoreLocked(f"{path}: 另一个后台进程已在运行（锁文件被占用）") from None
        return self

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()   # the advisory lock is released with its session
            self._conn = None
        if self._fh is not None:
            self._fh.close()     # closing releases the OS lock
            self._fh = None

    def __enter__(self) -> DaemonLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
