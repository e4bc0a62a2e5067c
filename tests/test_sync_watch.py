"""The daemon with a real watchdog observer on real temp folders."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from sync.daemon import Daemon
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook


def ids(out: Path) -> set[str]:
    try:
        g = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("全部投诉").to_python()
    except Exception:  # noqa: BLE001 - not written yet
        return set()
    return {r[0] for r in g[2:]}


def wait_for(cond: Callable[[], bool], timeout: float = 20) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("poll", [False, True])
def test_save_reaches_merged_workbook(tmp_path: Path, poll: bool) -> None:
    shop = tmp_path / "SH01"
    shop.mkdir()
    rows = sample_rows(12, seed=3, now=NOW, shop="SH01")
    write_shop_workbook(shop / "投诉.xlsx", rows[:10])
    out = tmp_path / "out" / "merged.xlsx"
    daemon = Daemon([shop], out, str(tmp_path / "state.sqlite"), poll=poll, rescan_interval=3600,
                    settle_seconds=0.5, clock=lambda: NOW)
    daemon.start()
    try:
        wait_for(lambda: len(ids(out)) == 10)
        # Excel's save: write an extension-less temp, delete the original, rename the temp
        (shop / "~$投诉.xlsx").write_bytes(b"owner")
        tmp = shop / "Cedd4100"
        write_shop_workbook(tmp.with_suffix(".tmp.xlsx"), rows)
        os.replace(tmp.with_suffix(".tmp.xlsx"), tmp)
        os.unlink(shop / "投诉.xlsx")
        os.replace(tmp, shop / "投诉.xlsx")
        took = wait_for(lambda: len(ids(out)) == 12)
        assert took < 15
        assert (shop / "~$投诉.xlsx").read_bytes() == b"owner"
    finally:
        daemon.stop()


def test_supervisor_restarts_dead_observer(tmp_path: Path) -> None:
    shop = tmp_path / "SH01"
    shop.mkdir()
    write_shop_workbook(shop / "投诉.xlsx", sample_rows(3, seed=1, now=NOW, shop="SH01"))
    out = tmp_path / "merged.xlsx"
    daemon = Daemon([shop], out, str(tmp_path / "s.sqlite"), rescan_interval=3600, settle_seconds=0.3,
                    clock=lambda: NOW)
    daemon.start()
    try:
        wait_for(lambda: len(ids(out)) == 3)
        obs = daemon.watchers.observers[shop.resolve()]
        obs.stop()
        obs.join(5)
        wait_for(lambda: daemon.watchers.restarts == 1)
        write_shop_workbook(shop / "新.xlsx", sample_rows(2, seed=9, now=NOW, shop="SH02"))
        wait_for(lambda: len(ids(out)) == 5)
    finally:
        daemon.stop()


def test_native_and_polled_folders_in_one_daemon(tmp_path: Path) -> None:
    """A shop's own disk (native events) and a NAS share (polling) merged by the same daemon."""
    from watchdog.observers import Observer
    from watchdog.observers.polling import PollingObserver

    local, nas = tmp_path / "SH01", tmp_path / "nas" / "SH02"
    local.mkdir()
    nas.mkdir(parents=True)
    rows1 = sample_rows(6, seed=4, now=NOW, shop="SH01")
    rows2 = sample_rows(6, seed=5, now=NOW, shop="SH02")
    write_shop_workbook(local / "投诉.xlsx", rows1[:3])
    write_shop_workbook(nas / "投诉.xlsx", rows2[:3])
    out = tmp_path / "merged.xlsx"
    daemon = Daemon([local], out, str(tmp_path / "s.sqlite"), poll_sources=[nas], poll_interval=0.5,
                    rescan_interval=3600, settle_seconds=0.3, clock=lambda: NOW)
    assert daemon.sources == [local.resolve(), nas.resolve()]  # the polled share is merged too
    daemon.start()
    try:
        observers = daemon.watchers.observers
        assert type(observers[local.resolve()]) is Observer and Observer is not PollingObserver
        assert type(observers[nas.resolve()]) is PollingObserver
        wait_for(lambda: len(ids(out)) == 6)
        excel_save(nas / "投诉.xlsx", rows2)
        wait_for(lambda: len(ids(out)) == 9)
        excel_save(local / "投诉.xlsx", rows1)
        wait_for(lambda: len(ids(out)) == 12)
        assert ids(out) == {r["complaint_id"] for r in rows1 + rows2}
        # each save merged on its own event, no rescan (an hour away). Waited for: the workbook
        # shows a merge before merge_now returns and counts it (this assert once ran in between)
        wait_for(lambda: daemon.merges >= 3)
        # a share that drops kills its observer: the supervisor brings back a polling one
        observers[nas.resolve()].stop()
        wait_for(lambda: daemon.watchers.restarts == 1)
        assert type(daemon.watchers.observers[nas.resolve()]) is PollingObserver
        assert type(daemon.watchers.observers[local.resolve()]) is Observer
    finally:
        daemon.stop()


def test_a_restarted_folder_is_never_missing_from_the_observers(tmp_path: Path) -> None:
    """The restart is counted, and the dead observer leaves the map, only once its successor runs.

    A reader that waits for the count (the status line, the test above) then looks the folder
    up; CI once saw the folder missing in the moment between the old observer's removal and the
    new one's start.
    """
    import queue

    from sync.watch import Watchers

    shop, gone = tmp_path / "SH01", tmp_path / "share"
    shop.mkdir()
    gone.mkdir()
    w = Watchers([shop.resolve(), gone.resolve()], queue.Queue())
    w.start()
    seen: list[tuple[Path, bool, int]] = []
    real_start = w._start

    def watched_start(folder: Path) -> None:
        seen.append((folder, folder in w.observers, w.restarts))
        real_start(folder)

    w._start = watched_start  # type: ignore[method-assign]
    try:
        for obs in w.observers.values():
            obs.stop()
            obs.join(5)
        gone.rmdir()  # a share that dropped: its observer cannot come back yet
        w.check()
        assert seen == [(shop.resolve(), True, 0)]  # the dead one still listed, nothing counted yet
        assert w.observers[shop.resolve()].is_alive() and gone.resolve() not in w.observers
        assert w.restarts == 2
        gone.mkdir()  # the share is back: watched again at the next check
        w.check()
        assert w.observers[gone.resolve()].is_alive() and w.restarts == 2
    finally:
        w.stop()


def excel_save(path: Path, rows: list[dict]) -> None:
    """Excel's save: the new content under an extension-less temp name, then renamed over."""
    tmp = path.with_name("Cedd4100")
    write_shop_workbook(tmp.with_suffix(".tmp.xlsx"), rows)
    os.replace(tmp.with_suffix(".tmp.xlsx"), tmp)
    os.replace(tmp, path)


def test_failed_file_retried_when_backoff_ends(tmp_path: Path) -> None:
    """A broken workbook fixed on a share that reports nothing is merged at its backoff end.

    The fix is written through a hard link outside the watched folder: the same file, but
    inotify only reports changes made through the watched folder's own entries, exactly as a
    save by another computer on an SMB share is never reported. The next full rescan is an
    hour away, so only the retry timer can pick the fix up.
    """
    from complaint_core.store import open_store
    from sync.pipeline import pending_retries

    shop, elsewhere = tmp_path / "SH01", tmp_path / "unwatched"
    shop.mkdir()
    elsewhere.mkdir()
    rows = sample_rows(4, seed=6, now=NOW, shop="SH01")
    good = write_shop_workbook(elsewhere / "good.xlsx", rows).read_bytes()
    (shop / "投诉.xlsx").write_bytes(good[: len(good) // 2])  # a half-copied file
    os.link(shop / "投诉.xlsx", elsewhere / "link.xlsx")
    out = tmp_path / "merged.xlsx"
    state = str(tmp_path / "s.sqlite")
    daemon = Daemon([shop], out, state, rescan_interval=3600, settle_seconds=0.3)
    daemon.start()
    try:
        store = open_store(state)
        wait_for(lambda: bool(pending_retries(store, [shop])))
        due_at = next(iter(pending_retries(store, [shop]).values()))
        # the store has the failure before the daemon's merge returns and sets its timer
        wait_for(lambda: daemon.retry_at is not None)
        with open(elsewhere / "link.xlsx", "r+b") as fh:   # fixed in place, no event reaches us
            fh.write(good)
        merges = daemon.merges
        wait_for(lambda: len(ids(out)) == 4, timeout=15)
        arrived = datetime.now()
        # not before the 5 s backoff ended, and within a couple of loop turns after it
        assert due_at <= arrived < due_at + timedelta(seconds=5), (due_at, arrived)
        # the workbook lands inside the retry pass; its bookkeeping (counter, next timer) follows
        # right after, in the daemon's thread
        wait_for(lambda: daemon.retries >= 1 and daemon.retry_at is None, timeout=5)
        assert daemon.merges == merges  # the retry did it, not a rescan
        assert not pending_retries(store, [shop])
        store.engine.dispose()
    finally:
        daemon.stop()


def test_a_folder_that_never_goes_quiet_is_still_merged(tmp_path: Path) -> None:
    # Another till keeps saving its own workbook every 0.2 s, so the folder is never quiet for
    # the settle time; the new complaints must still reach the merged workbook.
    import threading

    shop = tmp_path / "SH01"
    shop.mkdir()
    rows = sample_rows(8, seed=4, now=NOW, shop="SH01")
    write_shop_workbook(shop / "投诉.xlsx", rows[:5])
    busy = write_shop_workbook(shop / "二号收银台.xlsx", sample_rows(3, seed=5, now=NOW, shop="SH01"))
    out = tmp_path / "merged.xlsx"
    daemon = Daemon([shop], out, str(tmp_path / "s.sqlite"), rescan_interval=3600, settle_seconds=1.0,
                    max_defer_seconds=2.0, clock=lambda: NOW)
    stop = threading.Event()

    def till() -> None:
        n = 0
        while not stop.is_set():
            os.utime(busy, (time.time(), time.time() + n))
            n += 1
            time.sleep(0.2)

    daemon.start()
    writer = threading.Thread(target=till, daemon=True)
    try:
        want = {r["complaint_id"] for r in rows}
        wait_for(lambda: len(ids(out) & want) == 5)
        writer.start()
        time.sleep(0.5)
        write_shop_workbook(shop / "投诉.xlsx", rows)
        wait_for(lambda: ids(out) >= want, timeout=15)
        assert writer.is_alive()   # merged while the folder was still busy
    finally:
        stop.set()
        daemon.stop()


def _merging(tmp_path: Path, n: int, *, first: int, kind: type[Daemon] = Daemon) -> tuple[Path, list, Path, Daemon]:
    """A shop folder holding the first ``first`` of ``n`` rows, and a started daemon (of
    ``kind``) that has merged them: (folder, all the rows, merged workbook, daemon)."""
    shop = tmp_path / "SH01"
    shop.mkdir()
    rows = sample_rows(n, seed=n, now=NOW, shop="SH01")
    write_shop_workbook(shop / "投诉.xlsx", rows[:first])
    out = tmp_path / "merged.xlsx"
    daemon = kind([shop], out, str(tmp_path / "state.sqlite"), rescan_interval=3600, settle_seconds=0.5,
                  clock=lambda: NOW)
    daemon.start()
    wait_for(lambda: len(ids(out)) == first)
    return shop, rows, out, daemon


def test_the_watcher_keeps_merging_after_a_link_loop_appears(tmp_path: Path) -> None:
    """A link that points at itself, left in a shop folder while the watcher runs: its event
    made ``Path.resolve`` raise in the worker, which died, and no later save was ever merged
    (the process kept running). It is now one line on 来源 and the next save is merged."""
    shop, rows, out, daemon = _merging(tmp_path, 8, first=6)
    try:
        os.symlink("回环.xlsx", shop / "回环.xlsx")
        time.sleep(1.5)   # its event is taken and merged (a failed read) before the next save
        write_shop_workbook(shop / "投诉2.xlsx", rows[6:])
        wait_for(lambda: len(ids(out)) == 8)
        assert daemon.alive()
        sources = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("来源").to_python()
        loop = [r for r in sources if str(r[1]).endswith("回环.xlsx")]
        assert loop and "symbolic links" in loop[0][5], sources
    finally:
        daemon.stop()
    assert not daemon.alive()


class _Faulty(Daemon):
    """A fault no shop file causes today, injected where an event is first looked at."""

    def _relevant(self, path: Path) -> bool:
        if path.name.startswith("坏"):
            raise ValueError(f"unexpected event {path.name}")
        return super()._relevant(path)


def test_a_turn_of_the_worker_that_raises_is_logged_once_and_merging_goes_on(tmp_path: Path, caplog) -> None:
    shop, rows, out, daemon = _merging(tmp_path, 6, first=4, kind=_Faulty)
    try:
        for i in range(3):   # the same fault three times over: one log entry, with its traceback
            daemon.hints.put((shop / f"坏{i}.xlsx", time.monotonic()))
        time.sleep(4)
        write_shop_workbook(shop / "投诉2.xlsx", rows[4:])
        wait_for(lambda: len(ids(out)) == 6)
        assert daemon.alive()
    finally:
        daemon.stop()
    said = [r for r in caplog.records if "监视循环出错" in r.getMessage()]
    assert len(said) == 1 and said[0].exc_info is not None


_OUT_OF_WATCHES = r'''
import logging, os, queue, resource, sys, time
from pathlib import Path
from sync.watch import Watchers

logging.basicConfig(level=logging.WARNING, format="%(message)s")
folder = Path(sys.argv[1])
hints = queue.Queue()
watchers = Watchers([folder], hints, poll_interval=0.3)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
free = os.dup(0)   # the lowest free descriptor: below it, none is free
os.close(free)
resource.setrlimit(resource.RLIMIT_NOFILE, (free, hard))   # the kernel now refuses a new one (EMFILE)
watchers.start()
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
for _ in range(5):
    watchers.check()
print("polled", watchers.polled(folder), flush=True)
(folder / "投诉.xlsx").write_bytes(b"saved")
deadline, got = time.monotonic() + 15, False
while time.monotonic() < deadline and not got:
    try:
        got = hints.get(timeout=0.5)[0].name == "投诉.xlsx"
    except queue.Empty:
        pass
print("hint", got, flush=True)
watchers.stop()
'''


def test_a_folder_past_the_systems_native_watches_is_polled_and_said_once(tmp_path: Path) -> None:
    """Linux allows 128 native watchers per user by default: a chain of more shop folders (or two
    copies watching on one PC) left the last folders to the five-minute rescan, with a warning
    five times a second. The kernel's refusal (EMFILE, here from the descriptor limit) now turns
    that folder to polling, said once, and a save there is seen within the polling interval."""
    import subprocess
    import sys

    shop = tmp_path / "SH01"
    shop.mkdir()
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", _OUT_OF_WATCHES, str(shop)], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "polled True" in proc.stdout and "hint True" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stderr.count("系统文件监视数已用完") == 1, proc.stderr
    assert proc.stderr.count("无法监视") <= 1, proc.stderr   # polling's own start, refused the same way
