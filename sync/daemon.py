"""The sync daemon: watch shop folders, debounce, merge, rewrite the merged workbook."""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

from complaint_core.atomic import TEMP_PREFIX, held_open
from complaint_core.merged.render import read_back, workbook_stamp
from complaint_core.safety import real_path
from complaint_core.store import open_store
from complaint_core.store.lock import StoreLock

from .api import default_state_url, merge_into
from .feedback import FeedbackWriter, safe_pass
from .files import is_ignored
from .pipeline import EMPTY_FOLDER_GRACE, MergeReport, pending_retries
from .settle import quiet_enough
from .watch import Watchers

log = logging.getLogger("complaint_desk.sync")

MIN_RETRY_GAP = 1.0     # seconds between two retry passes, whatever the stored next-try times say
ERROR_RETRY_GAP = 30.0  # seconds before a merge that raised is tried again
ERROR_PAUSE = 1.0       # seconds the worker waits after a turn of its loop raised
ERROR_REPEAT = 600.0    # the same trouble is logged again (with its traceback) at most this often
# A changed file written less than this many seconds ago is looked at twice this far apart
# before it is read (``pipeline.read_files``): a shop's program may still be writing it.
LOOK_TWICE = 0.2
# Seconds of quiet after which a save that is a finished package is read. Excel's, WPS's and
# LibreOffice's save ends by renaming the finished temporary file onto the workbook, so once the
# workbook is a whole package the save is over, not paused; a quarter of a second still takes
# shops that save together into one merge. It stays above ``LOOK_TWICE``, so the workbook a
# rename brought in is not looked at twice. (0.5 s until issue 17's nineteenth round.)
QUICK_SETTLE = 0.25
# How often the merged workbook's time and size are looked at (one stat): it is often in a
# folder no shop saves into, so not watched.
OUT_LOOK = 0.5
# Seconds a manager's save of the merged workbook stays still before it is read back. Excel's
# AutoSave (a workbook on OneDrive) saves every few seconds while the manager types: reading
# each of those would keep a core busy (about 2.3 s a read at 100,000 complaints). A shop's save
# that comes sooner reads the manager's save itself, as it always did.
OUT_SETTLE = 5.0
# Seconds between looks (one open, ``atomic.held_open``) at a merged workbook a write found held
# open (Excel on Windows): it is written as soon as the manager closes it, not at the next
# shop's save or rescan. Where the look cannot see why the write failed (a share's own
# refusal), the tries back off, doubling up to the rescan interval.
LOCKED_LOOK = 5.0


class _Trouble:
    """What went wrong in the worker's loop, logged with its traceback the first time and then at
    most every ``ERROR_REPEAT`` seconds: a fault that comes back every second must not fill the
    service log, nor be forgotten."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def said(self) -> None:
        exc = sys.exc_info()[1]
        # the same trouble is the same kind of error from the same line, whatever file it names
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc is not None and exc.__traceback__ else None
        kind = f"{type(exc).__name__}@{where.filename}:{where.lineno}" if where else repr(exc)
        now = time.monotonic()
        if now - self._last.get(kind, -ERROR_REPEAT) >= ERROR_REPEAT:
            self._last[kind] = now
            log.exception("监视循环出错，继续运行 (watch loop error, carrying on)")


class Daemon:
    """``start()`` returns at once; merging runs in one worker thread; ``stop()`` joins it.

    The scheduler's ``run`` command creates one in its own process and calls ``merge_now()``
    from its APScheduler jobs when it needs fresh figures (see docs/sync.md).
    """

    def __init__(self, sources: list[Path], out: Path, state_url: str | None = None, *,
                 poll: bool = False, poll_sources: Iterable[Path] = (), poll_interval: float = 2.0,
                 rescan_interval: float = 300.0, settle_seconds: float = 2.0, max_defer_seconds: float = 30.0,
                 quick_settle_seconds: float = QUICK_SETTLE, clock: Callable[[], datetime] = datetime.now, feedback: bool = False,
                 empty_grace: timedelta | None = EMPTY_FOLDER_GRACE,
                 on_read: Callable[[MergeReport], object] | None = None) -> None:
        polled = [real_path(s) for s in poll_sources]
        # a polled folder is a source too; naming it under both options is not an error
        self.sources = list(dict.fromkeys([real_path(s) for s in sources] + polled))
        self.out = real_path(out)
        self.store = open_store(state_url or default_state_url(self.out))
        self.rescan_interval = rescan_interval
        self.settle = settle_seconds
        # a finished package (Excel's and WPS's save is a rename) needs only this much quiet
        self.quick_settle = min(quick_settle_seconds, settle_seconds)
        self.max_defer = max_defer_seconds
        self.clock = clock
        self.empty_grace = empty_grace   # how long a folder that went empty keeps its rows
        self.hints: queue.Queue[tuple[Path, float]] = queue.Queue()
        self.watchers = Watchers(self.sources, self.hints, poll=poll, poll_folders=polled,
                                 poll_interval=poll_interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._store_lock: StoreLock | None = None
        self.merges = 0
        self.retries = 0
        self.last_report: MergeReport | None = None
        self.retry_at: float | None = None   # time.monotonic() when the earliest failed file is due
        self.redo_at: float | None = None    # time.monotonic() to redo a full merge that raised
        self.feedback = FeedbackWriter() if feedback else None   # the shops' _反馈 files
        self.on_read = on_read   # called after a merge that read a changed file (run: scan at once)
        # the merged workbook as last looked at: (mtime_ns, size), since when, and the stamp
        # whose managers' cells were last read back (or found to need no reading)
        self._out_seen: tuple[int, int] | None = None
        self._out_since = 0.0
        self._out_looked = 0.0
        self._out_done: tuple[int, int] | None = None
        self.read_backs = 0
        self.rewrite_at: float | None = None   # time.monotonic() to look whether a workbook held open is free
        self.held: Path | None = None          # which one the last write found held
        self._held_tries = 0                   # writes in a row that found it held open
        self.rewrites = 0

    def start(self) -> None:
        """Start watching; ``StoreLocked`` when another process already watches into this store
        (``sync --watch`` started twice, or beside a ``run`` with [sync] folders)."""
        self._store_lock = StoreLock(self.store, "sync").acquire()
        self.watchers.start()
        self._thread = threading.Thread(target=self._run, name="complaint-sync", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        """Whether the worker is still there to merge (False before ``start`` and after ``stop``):
        ``sync --watch`` and ``run`` end with an error when it is gone, so that the service
        manager starts them again instead of a process that watches and never merges."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self.watchers.stop()
        if self._store_lock is not None:   # after the worker: another watcher may start now
            self._store_lock.release()
            self._store_lock = None
        self.store.engine.dispose()

    def merge_now(self) -> MergeReport:
        """A full rescan and rewrite (start-up, schedule, or a job of the scheduler)."""
        with self._lock:
            report = merge_into(self.store, self.sources, self.out, now=self.clock(),
                                settle=LOOK_TWICE, empty_grace=self.empty_grace)
            # what comes next is planned before the count and the report say the write is
            # done: whoever watches them (a status line, a test) never sees half of it
            self.redo_at = None
            self._plan_retry()
            self._plan_rewrite(report)
            self.last_report = report
            self.merges += 1
            return report

    def retry_now(self) -> MergeReport:
        """Re-read only the failed files whose backoff has ended; rewrite only if that changed something."""
        with self._lock:
            now = self.clock()
            due = {p for p, at in pending_retries(self.store, self.sources).items() if at <= now}
            report = merge_into(self.store, self.sources, self.out, now=now, settle=LOOK_TWICE, only=due, render_when_idle=False)
            self._plan_retry()
            self._plan_rewrite(report)
            self.last_report = report
            self.retries += 1
            return report

    def rewrite_now(self) -> MergeReport:
        """Write the merged workbook that a write found held open: the store has everything,
        no shop file is read."""
        with self._lock:
            report = merge_into(self.store, self.sources, self.out, now=self.clock(), only=set(),
                                empty_grace=self.empty_grace)
            self._plan_rewrite(report)
            self.last_report = report
            self.rewrites += 1
            return report

    def _plan_rewrite(self, report: MergeReport) -> None:
        """After a write: look again soon when the workbook was held open, else stop looking."""
        if report.write_error:
            self.held = report.held   # the merged workbook, or one of its archives
            self._held_tries += 1
            gap = min(LOCKED_LOOK * 2 ** (self._held_tries - 1), max(self.rescan_interval, LOCKED_LOOK))
            self.rewrite_at = time.monotonic() + gap
        elif report.written is not None:
            self.rewrite_at, self._held_tries, self.held = None, 0, None

    def read_back_now(self) -> int | None:
        """Save a manager's save of the merged workbook into the store now (``render.read_back``),
        so that the next shop's save is merged without reading it: at 100,000 complaints that
        reading takes seconds. None when there was nothing to read."""
        with self._lock:
            got = read_back(self.store, self.out, now=self.clock())
            if got is not None:
                self.read_backs += 1
                log.info("已保存主管在 %s 中的修改：%d 个单元格 (manager cells saved from the merged workbook)",
                         self.out.name, got)
            return got

    def _manager_saved(self, now: float) -> bool:
        """Whether the merged workbook has a save not looked at yet that has been still for
        ``OUT_SETTLE`` (the daemon's own writes are among them: ``read_back`` tells them apart)."""
        if now - self._out_looked < OUT_LOOK:
            return False
        self._out_looked = now
        stamp = workbook_stamp(self.out)
        if stamp != self._out_seen:
            self._out_seen, self._out_since = stamp, now
            return False
        return stamp is not None and stamp != self._out_done and now - self._out_since >= OUT_SETTLE

    def _plan_retry(self) -> None:
        """Turn the earliest stored next-try time (store clock) into a monotonic wake-up time."""
        due = pending_retries(self.store, self.sources)
        if not due:
            self.retry_at = None
            return
        wait = (min(due.values()) - self.clock()).total_seconds()
        # Never sooner than a second from now: a file that stays due (being written, or a
        # fixed --now clock that never reaches its next try) must not turn the loop into a spin.
        self.retry_at = time.monotonic() + max(wait, MIN_RETRY_GAP)

    def _relevant(self, path: Path) -> bool:
        if path in self.sources:
            return True  # a folder-level hint (observer restarted)
        if real_path(path) == self.out or path.name.startswith(TEMP_PREFIX) or \
                path.name.startswith(f".{self.out.stem}.state"):
            return False
        # Excel's extension-less temp names matter only through the rename that follows;
        # the rename's destination is enqueued too, so those hints can be ignored here.
        return not is_ignored(path, out=self.out)

    def _run(self) -> None:
        self._safe_merge()  # changes made while the daemon was down
        last_scan = time.monotonic()
        dirty_since: float | None = None
        last_hint = 0.0
        changed: set[Path] = set()   # what the events of this burst named
        trouble = _Trouble()
        while not self._stop.is_set():
            try:
                dirty_since, last_hint, last_scan = self._step(changed, dirty_since, last_hint, last_scan)
            except Exception:  # noqa: BLE001 - one odd event or folder never ends the merging
                trouble.said()
                self._stop.wait(ERROR_PAUSE)

    def _step(self, changed: set[Path], dirty_since: float | None, last_hint: float,
              last_scan: float) -> tuple[float | None, float, float]:
        """One turn of the worker's loop: take a hint or wait a little, then merge, retry or write
        feedback when due. Returns (dirty since, last hint, last scan) for the next turn."""
        # wake when a quiet period ends, not at the next fifth of a second after it
        wait = 0.2
        if dirty_since is not None:
            quiet = time.monotonic() - last_hint
            wait = min(0.2, max((self.quick_settle if quiet < self.quick_settle else self.settle) - quiet, 0.01))
        try:
            path, at = self.hints.get(timeout=wait)
            if self._relevant(path):
                dirty_since = dirty_since or at
                last_hint = at
                changed.add(path)
            if dirty_since is None or time.monotonic() - dirty_since < self.max_defer:
                return dirty_since, last_hint, last_scan
        except queue.Empty:
            pass
        self.watchers.check()
        now = time.monotonic()
        # debounce: merge once the folder has been quiet for settle seconds (quick_settle
        # when every file named is a finished package), but a folder that never goes
        # quiet (twenty tills saving all day) is merged every max_defer
        if dirty_since is not None and (
                quiet_enough(now - last_hint, changed, quick=self.quick_settle, settle=self.settle)
                or now - dirty_since >= self.max_defer):
            dirty_since = None
            changed.clear()
            self._safe_merge()
            last_scan = time.monotonic()
        elif now - last_scan >= self.rescan_interval or (self.redo_at is not None and now >= self.redo_at):
            self._safe_merge()
            last_scan = time.monotonic()
        elif self.retry_at is not None and now >= self.retry_at:
            # the backoff of a failed file ended: a share that reports nothing would
            # otherwise leave the fixed file unread until the next full rescan
            self._safe(self.retry_now)
        elif self.rewrite_at is not None and now >= self.rewrite_at:
            if held_open(self.held or self.out):   # still open in Excel: look again in a few seconds
                self.rewrite_at = now + LOCKED_LOOK
            else:
                self._safe(self.rewrite_now)
        elif self.feedback is not None and self.feedback.due():
            # no file changed, but a deadline may have turned due soon or overdue
            safe_pass(self.feedback, self.sources, now=self.clock(), out=self.out)
        elif dirty_since is None and self._manager_saved(now):   # a merge due soon reads it itself
            self._out_done = self._out_seen   # one try a save: one that cannot be read waits for the next write
            try:
                self.read_back_now()
            except Exception as exc:  # noqa: BLE001 - the next write reads the workbook again
                log.warning("未能读取主管保存的 %s，下次写出时再读 (manager's save not read yet: %s)",
                            self.out.name, exc)
        return dirty_since, last_hint, last_scan

    def _safe_merge(self) -> MergeReport | None:
        return self._safe(self.merge_now)

    def _safe(self, merge: Callable[[], MergeReport]) -> MergeReport | None:
        try:
            report = merge()
            if report.read and self.on_read is not None:
                # new or changed complaints: whoever watches for escalations looks at once, not at
                # its next interval (seed 004: a severe complaint is reported upward immediately)
                self.on_read(report)
            safe_pass(self.feedback, self.sources, now=self.clock(), out=self.out)
            unstable = [r for r in report.skipped if r.outcome == "unstable"]
            if unstable:
                # still being written: come back after another quiet period
                self.hints.put((unstable[0].path, time.monotonic()))
            return report
        except Exception:  # noqa: BLE001 - the daemon keeps running; the next cycle retries
            log.exception("合并失败，下次重试")
            # e.g. the store was briefly unreachable: a full merge again soon, not at the
            # next rescan, and not in a tight loop that fills the log
            self.redo_at = time.monotonic() + ERROR_RETRY_GAP
            if self.rewrite_at is not None:   # nor a workbook held open tried again at every turn
                self.rewrite_at = self.redo_at
            return None
