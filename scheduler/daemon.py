"""The scheduler half of the daemon: APScheduler jobs over the store, with fixed ids.

Jobs live in an SQLAlchemyJobStore in the same database, so a restart finds them (no
duplicates: fixed ids + replace_existing). ``coalesce`` folds runs missed while the machine
was off into one, and every scan computes "as of now", so that one run catches up fully.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from complaint_core.clock import Clock
from complaint_core.rules_book import DEFAULT, load_rules

from .config import Config, load_config

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from complaint_core.store import Store

    from .api import ScanReport
    from .outbox import SendReport
    from .transport import MailTransport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnceMerge:
    """What one merge of the ``[sync]`` folders did, for ``run --once`` to print."""

    read: int                 # shop files read this time
    problems: list[str]       # one line per file not merged (unreadable, a sync conflict copy)


class SyncHook(Protocol):
    """What ``run`` asks of the shop-folder sync. The scheduler never imports ``sync`` (the cards
    never import each other): the CLI passes ``complaint_desk.wiring.SYNC``."""

    def start(self, sched: BaseScheduler, cfg: Config) -> object:
        """Start watching the ``[sync]`` folders beside the scheduler (nothing when none are set)."""

    def once(self, cfg: Config, now: datetime) -> OnceMerge | None:
        """``run --once``: read the ``[sync]`` folders into the store once (None: no folders set)."""

    def alive(self) -> bool:
        """Whether the watcher ``start`` started is still merging (True when none was started)."""


def zone(cfg: Config) -> tzinfo:
    """The shop's time zone: ``[scan] timezone``, else the machine's own (APScheduler's default)."""
    name = cfg["scan"]["timezone"]
    if name:
        from zoneinfo import ZoneInfo
        return ZoneInfo(name)
    from tzlocal import get_localzone
    return get_localzone()


def _now(cfg: Config) -> datetime:
    """The shop's wall-clock time, naive: the store and the workbooks hold naive shop times."""
    if not cfg["scan"]["timezone"]:
        return datetime.now().replace(microsecond=0)
    return datetime.now(zone(cfg)).replace(tzinfo=None, microsecond=0)


@contextmanager
def _store(cfg: Config) -> Iterator[Store]:
    """The store for one job run, its engine disposed at the end: the daemon runs a job every few
    minutes for months, and each run's pooled connections (SQLite file handles, PostgreSQL
    sessions) would otherwise stay open until the garbage collector found them."""
    from complaint_core.merged.archive import save_closed_years
    from complaint_core.store import open_store

    store = open_store(cfg["store"]["url"])
    try:
        # every render (the watcher's, `sync --once`) keeps as many years as the config says
        save_closed_years(store, cfg["store"]["closed_years"], now=datetime.now())
        yield store
    finally:
        store.engine.dispose()


def _log_send(rep: SendReport) -> None:
    # The daemon has no terminal: a wrong password, a server without STARTTLS or a robot's wrong
    # key is only seen here.
    for error in rep.errors:
        log.error("提醒未发出：%s", error)
    for note in rep.notes:
        log.warning("%s", note)


def transport_for(cfg: Config) -> MailTransport:
    from .transport import EmlFolderTransport, SmtpTransport

    m = cfg["mail"]
    if not m["host"]:
        return EmlFolderTransport(Path(m["outbox_dir"]))
    return SmtpTransport(m["host"], m["port"], m["user"], m["sender"], m["tls"], m["allow_plain_auth"],
                         m["timeout_seconds"])


def deliver(store: Store, cfg: Config, *, now: datetime) -> SendReport:
    """Send what is due: the mails, then each robot's posts (a robot's trouble never holds up the
    mails or the other robots). Returns one SendReport for both."""
    from . import outbox as ob
    from .robots import PER_MINUTE
    from .webhook import JsonFolderTransport, robot_transports

    shop_zone = zone(cfg) if cfg["scan"]["timezone"] else None   # None: the computer's own zone
    rep = ob.send_due(store, transport_for(cfg), now=now, sender=cfg["mail"]["sender"], zone=shop_zone)
    robots = cfg["bot"]
    if robots or _has_posts(store):
        transports = robot_transports(robots, cfg["mail"]["outbox_dir"])
        # A robot whose variable is missing (a typo, or set for another Windows user) writes
        # files instead of posting: said on every run, so it is not mistaken for silence.
        rep.notes += [f"{r.label()}：环境变量 {r.url_env} 未设置，消息只写入 "
                      f"{Path(cfg['mail']['outbox_dir']) / r.name}（未发到群里）"
                      for r in robots if isinstance(transports[r.name], JsonFolderTransport)]
        try:
            rep.add(ob.send_posts(store, transports, now=now, per_minute={r.name: PER_MINUTE[r.kind] for r in robots}))
        finally:
            for t in transports.values():
                t.close()
    return rep


def _has_posts(store: Store) -> bool:
    # Robot sections all removed while posts wait: send_posts marks those failed (and says why).
    from sqlalchemy import select

    from complaint_core.store.sched_tables import outbox

    with store.begin() as c:
        return c.execute(select(outbox.c.id).where(outbox.c.channel == "bot", outbox.c.state == "pending")
                         .limit(1)).first() is not None


def scan_job(config_path: str) -> None:
    """Scan, queue, send and re-render the merged workbook (when configured)."""
    from .api import scan_once

    cfg = load_config(config_path)
    rules = load_rules(cfg["rules"]["path"]) if cfg["rules"]["path"] else None
    now = _now(cfg)
    with _store(cfg) as store:
        rep = scan_once(store, now=now, rules=rules, robots=cfg["bot"])
        _log_send(deliver(store, cfg, now=now))
        written, held = "", False
        if cfg["store"]["merged"]:
            from complaint_core.errors import WorkbookLocked
            from complaint_core.merged.render import render_merged
            try:
                unchanged = render_merged(store, cfg["store"]["merged"], now=now).unchanged
                written = "；汇总工作簿无变化，未重写 (workbook unchanged)" if unchanged else "；汇总工作簿已更新 (workbook written)"
            except WorkbookLocked as e:
                # open in Excel: the scan's penalties and reminders are stored and sent, and the
                # next scan or shop's save writes the workbook. One line, not APScheduler's
                # traceback at every interval while a manager reads it.
                written, held = f"；汇总工作簿被占用，未写入，下次写入 (workbook held open, written later: {e})", True
        (log.warning if held else log.info)(
            "扫描完成 (scan done)：查看 %d 条投诉，新处罚 %d 条，新邮件 %d 封，新机器人消息 %d 条%s",
            rep.scanned, rep.new_penalties, rep.queued_mails, rep.queued_posts, written)


def send_job(config_path: str) -> None:
    cfg = load_config(config_path)
    with _store(cfg) as store:
        _log_send(deliver(store, cfg, now=_now(cfg)))


def configure(sched: BaseScheduler, config_path: str | Path, sync: SyncHook | None = None) -> list[str]:
    """Add the fixed-id jobs to ``sched`` (its job store already set) and return their ids; then
    ``sync`` (the CLI's) starts the folder watcher beside them."""
    cfg = load_config(config_path)
    rules = load_rules(cfg["rules"]["path"]) if cfg["rules"]["path"] else DEFAULT
    common = dict(replace_existing=True, coalesce=True, max_instances=1,
                  misfire_grace_time=cfg["scan"]["misfire_grace_seconds"], kwargs={"config_path": str(config_path)})
    ids = ["scan", "send"]
    # The first scan at once. An aware time: a naive one would be read in the scheduler's zone,
    # hours off when [scan] timezone is not the machine's.
    sched.add_job("scheduler.daemon:scan_job", "interval", id="scan",
                  minutes=cfg["scan"]["interval_minutes"], next_run_time=datetime.now(zone(cfg)), **common)
    sched.add_job("scheduler.daemon:send_job", "interval", id="send",
                  minutes=cfg["mail"]["send_interval_minutes"], **common)
    for t in rules.reminder_times:   # the digests go out at the times the rules say, in the shop's zone
        jid = f"remind-{t:%H%M}"
        sched.add_job("scheduler.daemon:scan_job", "cron", id=jid, hour=t.hour, minute=t.minute, **common)
        ids.append(jid)
    wanted = set(ids)
    for job in sched.get_jobs():
        # reminder times removed from the rules: drop their jobs; a scan asked for before a
        # stop: the scan at start does it
        if (job.id.startswith("remind-") and job.id not in wanted) or job.id == SCAN_SOON:
            job.remove()
    if sync is not None:
        sync.start(sched, cfg)
    return ids


SCAN_SOON = "scan-soon"


def scan_soon(sched: BaseScheduler) -> None:
    """Scan as soon as the worker is free: after the watcher stored new or changed complaints, a
    complaint that must be reported upward (预警上报) alerts the managers at once, not at the next
    interval (seed 004). The interval job keeps its times.

    A job of its own, not the interval job brought forward: APScheduler skips a run of a job
    whose instance is still going ("maximum number of running instances reached"), and a read
    while a scan ran was then left for the interval, 15 minutes later. Two instances of this one
    may be in the one worker's queue. With two there, one has not begun and will see everything
    stored so far: a third ask is skipped (APScheduler's log says so) with nothing left unscanned.
    """
    scan = sched.get_job("scan")
    if scan is None:
        return
    sched.add_job("scheduler.daemon:scan_job", "date", id=SCAN_SOON, replace_existing=True,
                  run_date=datetime.now(sched.timezone), max_instances=2, coalesce=True,
                  misfire_grace_time=scan.misfire_grace_time, kwargs=scan.kwargs)


def make_scheduler(store_url: str, *, blocking: bool = True, timezone: tzinfo | None = None) -> BaseScheduler:
    """The scheduler over the store's job table; ``timezone`` (default: the machine's) is the zone
    the reminder times are in."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    from complaint_core.store import open_store

    engine = open_store(store_url).engine
    cls = BlockingScheduler if blocking else BackgroundScheduler
    zoned = {"timezone": timezone} if timezone is not None else {}
    # One worker: the scan and the send jobs both write the outbox and the merged workbook, so
    # they take turns instead of racing (a reminder time and the interval scan can coincide).
    return cls(jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs")},
               executors={"default": ThreadPoolExecutor(1)}, **zoned)


def scheduler_for(config_path: str | Path, *, blocking: bool = True,
                  sync: SyncHook | None = None) -> BaseScheduler:
    """The daemon's scheduler for ``config_path``: in its [scan] timezone, with its jobs added."""
    cfg = load_config(config_path)
    sched = make_scheduler(cfg["store"]["url"], blocking=blocking, timezone=zone(cfg))
    configure(sched, config_path, sync)
    return sched


STOP_POLL = 0.5   # seconds between the main thread's looks at the stop flag


def stop_on_signals() -> Callable[[], bool]:
    """Ctrl+C (SIGINT) and the SIGTERM that systemd, NSSM and `kill` stop a service with only
    raise a flag; the answer tells whether one came. ``run``'s main thread looks at it between
    naps and then shuts the scheduler down, which waits for the running job.

    The handler raised SystemExit (and Ctrl+C a KeyboardInterrupt) before: an exception lands
    at whatever instruction the main thread is at, and when that was inside APScheduler's or
    SQLAlchemy's hold on a lock (the job store is SQL), the shutdown then waited for the lock
    forever: a stop that never ended, seen once in CI. A second signal only raises the flag
    again, so it cannot cut the shutdown short either. Outside the main thread: no handler (the
    flag then never rises; the caller stops the scheduler itself).
    """
    import signal
    import threading

    raised: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        return lambda: bool(raised)

    def handler(signum: int, _frame: object) -> None:
        if not raised:
            log.info("收到停止信号 (%s)，正在停止（等待当前任务完成）", signal.Signals(signum).name)
        raised.append(signum)

    for name in ("SIGINT", "SIGTERM"):
        sig = getattr(signal, name, None)
        # a copy started in the background of a script inherits Ctrl+C as ignored, so that a
        # Ctrl+C meant for the script does not stop it: that is kept (docs/service.md)
        if sig is None or (name == "SIGINT" and signal.getsignal(sig) is signal.SIG_IGN):
            continue
        signal.signal(sig, handler)
    return lambda: bool(raised)


def _threads_on_sigusr1() -> None:
    """``kill -USR1 <pid>`` prints where every thread of the daemon is to its stderr (the
    service log): what a technician needs when the daemon seems stuck, without stopping it."""
    import faulthandler
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)


@dataclass
class OnceReport:
    merged: OnceMerge | None   # SyncHook.once's answer (None: no [sync] folders)
    scan: ScanReport
    send: SendReport
    render_error: str = ""

    @property
    def ok(self) -> bool:
        """Everything due went out (a robot's own per-minute limit only postpones)."""
        return not (self.send.errors or self.send.unknown or self.send.failed or self.send.retry)


def run_once(config_path: str | Path, sync: SyncHook | None = None, *,
             now: datetime | Clock | None = None) -> OnceReport:
    """One cycle for Task Scheduler or cron: merge the [sync] folders (through the CLI's ``sync``),
    scan, send the mails and robot posts, rewrite the merged workbook. Takes the daemon's lock,
    so it never overlaps a running service or a previous run that is still busy."""
    from complaint_core.errors import WorkbookLocked
    from complaint_core.store import open_store

    from .api import scan_once
    from .lock import DaemonLock

    cfg = load_config(config_path)
    rules = load_rules(cfg["rules"]["path"]) if cfg["rules"]["path"] else None
    # --now with an offset means that moment in the shops' zone ([scan] timezone)
    if isinstance(now, Clock):
        now = now.now(cfg["scan"]["timezone"] or None) if now.moment is not None else None
    clock = now or _now(cfg)
    lock_store = open_store(cfg["store"]["url"])
    try:
        with DaemonLock(lock_store):
            merged = sync.once(cfg, clock) if sync is not None else None
            with _store(cfg) as store:
                scanned = scan_once(store, now=clock, rules=rules, robots=cfg["bot"])
                sent = deliver(store, cfg, now=clock)   # the CLI prints its errors and notes
                render_error = ""
                if cfg["store"]["merged"]:
                    from complaint_core.merged.render import render_merged
                    try:
                        render_merged(store, cfg["store"]["merged"], now=clock)
                    except WorkbookLocked as e:   # open in Excel: the next run writes it, nothing lost
                        render_error = str(e)
    finally:
        lock_store.engine.dispose()
    return OnceReport(merged, scanned, sent, render_error)


def _gone(sched: BaseScheduler, sync: SyncHook | None) -> str:
    """What of the daemon has stopped on its own ("" while the scheduler and the watcher run)."""
    if not sched.running:
        return "调度器 (scheduler)"
    if sync is not None and not sync.alive():
        return "文件夹监视 (folder watcher)"
    return ""


def run(config_path: str | Path, sync: SyncHook | None = None) -> int:
    """Run until stopped; refuses to start when another copy holds the store's lock. Returns the
    exit code: 0 when stopped by a signal, 1 when the scheduler or the watcher stopped on its own
    (the service manager then starts a copy that works, rather than one that only waits)."""
    from complaint_core.store import open_store

    from .lock import DaemonLock

    cfg = load_config(config_path)
    stopped = stop_on_signals()
    with DaemonLock(open_store(cfg["store"]["url"])):
        # the scheduler runs in a thread of its own; this one only naps and looks at the flag,
        # so a signal never lands inside the scheduler's or the store's work
        sched = scheduler_for(config_path, blocking=False, sync=sync)
        _threads_on_sigusr1()
        gone = ""
        if not stopped():   # a stop asked while starting: no scan is begun
            sched.start()
            try:
                while not stopped() and not (gone := _gone(sched, sync)):
                    time.sleep(STOP_POLL)
            finally:
                if sched.running:
                    sched.shutdown(wait=True)
        if gone:
            log.error("%s 已意外停止，后台进程退出以便服务重新启动 (stopped: exiting so that the service restarts)",
                      gone)
            return 1
        log.info("后台进程已停止")
        return 0
