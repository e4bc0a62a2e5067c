"""The scheduler half of the daemon: APScheduler jobs over the store, with fixed ids.

Jobs live in an SQLAlchemyJobStore in the same database, so a restart finds them (no
duplicates: fixed ids + replace_existing). ``coalesce`` folds runs missed while the machine
was off into one, and every scan computes "as of now", so that one run catches up fully.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from complaint_core.rules_book import DEFAULT, load_rules

from .config import load_config

log = logging.getLogger(__name__)

ExtraJobs = Callable[[Any, dict[str, dict[str, Any]]], None]   # (scheduler, config) -> adds jobs
Config = dict[str, dict[str, Any]]


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
def _store(cfg: Config) -> Iterator[Any]:
    """The store for one job run, its engine disposed at the end: the daemon runs a job every few
    minutes for months, and each run's pooled connections (SQLite file handles, PostgreSQL
    sessions) would otherwise stay open until the garbage collector found them."""
    from complaint_core.store import open_store

    store = open_store(cfg["store"]["url"])
    try:
        yield store
    finally:
        store.engine.dispose()


def _log_send(rep: Any) -> None:
    # The daemon has no terminal: a wrong password or a server without STARTTLS is only seen here.
    for error in rep.errors:
        log.error("提醒邮件未发出：%s", error)


def transport_for(cfg: Config) -> Any:
    from .transport import EmlFolderTransport, SmtpTransport

    m = cfg["mail"]
    if not m["host"]:
        return EmlFolderTransport(Path(m["outbox_dir"]))
    return SmtpTransport(m["host"], m["port"], m["user"], m["sender"], m["tls"], m["allow_plain_auth"],
                         m["timeout_seconds"])


def scan_job(config_path: str) -> None:
    """Scan, queue, send and re-render the merged workbook (when configured)."""
    from .api import scan_once, send_due

    cfg = load_config(config_path)
    rules = load_rules(cfg["rules"]["path"]) if cfg["rules"]["path"] else None
    now = _now(cfg)
    with _store(cfg) as store:
        scan_once(store, now=now, rules=rules)
        _log_send(send_due(store, transport_for(cfg), now=now, sender=cfg["mail"]["sender"]))
        if cfg["store"]["merged"]:
            from complaint_core.merged.render import render_merged
            render_merged(store, cfg["store"]["merged"], now=now)


def send_job(config_path: str) -> None:
    from .api import send_due

    cfg = load_config(config_path)
    with _store(cfg) as store:
        _log_send(send_due(store, transport_for(cfg), now=_now(cfg), sender=cfg["mail"]["sender"]))


def configure(sched: Any, config_path: str | Path, extra_jobs: Iterable[ExtraJobs] = ()) -> list[str]:
    """Add the fixed-id jobs to ``sched`` (its job store already set) and return their ids."""
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
    for job in sched.get_jobs():   # reminder times removed from the rules: drop their jobs
        if job.id.startswith("remind-") and job.id not in wanted:
            job.remove()
    for hook in extra_jobs:
        hook(sched, cfg)
    return ids


def make_scheduler(store_url: str, *, blocking: bool = True, timezone: tzinfo | None = None) -> Any:
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
                  extra_jobs: Iterable[ExtraJobs] = ()) -> Any:
    """The daemon's scheduler for ``config_path``: in its [scan] timezone, with its jobs added."""
    cfg = load_config(config_path)
    sched = make_scheduler(cfg["store"]["url"], blocking=blocking, timezone=zone(cfg))
    configure(sched, config_path, extra_jobs)
    return sched


def _stop_on_sigterm() -> None:
    """systemd, NSSM and `kill` stop a service with SIGTERM: make it a clean shutdown, like Ctrl+C.

    Python's default for SIGTERM ends the process at once, mid-job. Raising SystemExit in the
    main thread unwinds ``sched.start()`` into ``run``'s shutdown, which waits for the running
    job (its writes are transactions and atomic files anyway) and then releases the lock.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return

    def handler(signum: int, _frame: Any) -> None:
        signal.signal(signum, signal.SIG_IGN)   # a second SIGTERM must not cut the shutdown short
        log.info("收到 SIGTERM，正在停止（等待当前任务完成）")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)


def _threads_on_sigusr1() -> None:
    """``kill -USR1 <pid>`` prints where every thread of the daemon is to its stderr (the
    service log): what a technician needs when the daemon seems stuck, without stopping it."""
    import faulthandler
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)


def run(config_path: str | Path, extra_jobs: Iterable[ExtraJobs] = ()) -> None:
    """Run until stopped; refuses to start when another copy holds the store's lock."""
    from complaint_core.store import open_store

    from .lock import DaemonLock

    cfg = load_config(config_path)
    with DaemonLock(open_store(cfg["store"]["url"])):
        sched = scheduler_for(config_path, extra_jobs=extra_jobs)
        _stop_on_sigterm()
        _threads_on_sigusr1()
        try:
            sched.start()
        except (KeyboardInterrupt, SystemExit):
            sched.shutdown(wait=True)
        log.info("后台进程已停止")
