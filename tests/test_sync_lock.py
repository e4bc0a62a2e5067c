"""One folder watcher per store (``complaint_core.store.lock``, the ``sync`` role): a clerk who
starts the watcher's shortcut twice gets one line saying so, not two watchers reading every
save and rewriting the same workbook, twice the work, two processes replacing one file. The
scheduler's own lock (``run``) is another role: ``run`` without [sync] folders beside a
``sync --watch`` stays a documented set-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from complaint_core.errors import StoreLocked
from complaint_core.store import open_store
from complaint_core.store.lock import StoreLock
from scheduler.lock import DaemonLock
from sync.daemon import Daemon


def _daemon(tmp_path: Path) -> Daemon:
    shop = tmp_path / "shops" / "S1"
    shop.mkdir(parents=True, exist_ok=True)
    return Daemon([shop], tmp_path / "merged.xlsx", str(tmp_path / "state.sqlite"), rescan_interval=3600)


def test_a_second_watcher_of_the_same_store_is_refused_until_the_first_stops(tmp_path: Path) -> None:
    first, second = _daemon(tmp_path), _daemon(tmp_path)
    first.start()
    try:
        with pytest.raises(StoreLocked, match="另一个进程已在监视门店文件夹"):
            second.start()
        assert first.alive() and not second.alive()
    finally:
        first.stop()
    second.start()   # the first one's stop let go of the lock
    try:
        assert second.alive()
    finally:
        second.stop()
        first.store.engine.dispose()


def test_sync_watch_beside_a_watching_store_says_so_in_one_line(tmp_path: Path) -> None:
    watching = _daemon(tmp_path)
    watching.start()
    try:
        # its own process, as a clerk starts it; a watcher that started anyway would run until
        # the timeout, which fails the test
        r = subprocess.run([sys.executable, "-m", "complaint_desk", "sync", "--watch",
                            "--source", str(tmp_path / "shops" / "S1"), "--out", str(tmp_path / "merged.xlsx"),
                            "--state", f"sqlite:///{tmp_path / 'state.sqlite'}"],
                           capture_output=True, text=True, timeout=120)
    finally:
        watching.stop()
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and "另一个进程已在监视门店文件夹" in lines[0], lines


def test_the_scheduler_and_a_watcher_share_a_store(tmp_path: Path) -> None:
    # `run` without [sync] folders holds the daemon's lock; `sync --watch` the watcher's
    store = open_store(tmp_path / "state.sqlite")
    with DaemonLock(store):
        watcher = _daemon(tmp_path)
        watcher.start()
        try:
            assert watcher.alive()
            with pytest.raises(StoreLocked):
                DaemonLock(open_store(tmp_path / "state.sqlite")).acquire()
        finally:
            watcher.stop()
    store.engine.dispose()


def test_postgres_holds_each_role_once(pg_url: str) -> None:
    a, b = open_store(pg_url), open_store(pg_url)
    try:
        with StoreLock(a, "sync"):
            with pytest.raises(StoreLocked, match="另一个进程已在监视门店文件夹"):
                StoreLock(b, "sync").acquire()
            with StoreLock(b, "daemon"):   # the other role is free
                pass
        StoreLock(b, "sync").acquire().release()   # let go with its session
    finally:
        a.engine.dispose()
        b.engine.dispose()
