"""The daemon's jobs in a real SQLAlchemyJobStore, catch-up after the machine was off, the lock."""

from __future__ import annotations

import gc
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import scheduler.api  # noqa: F401
from complaint_core.errors import BadSetting, StoreLocked
from complaint_core.store import open_store
from scheduler.api import scan_once
from scheduler.config import KEYS, load_config
from scheduler.daemon import configure, make_scheduler
from scheduler.lock import DaemonLock
from tests.test_mail_outbox import RULES, fill


def write_config(tmp_path, extra=""):
    p = tmp_path / "desk.toml"
    p.write_text(f'[store]\nurl = "state.db"\n[scan]\ninterval_minutes = 10\n{extra}', encoding="utf-8")
    return p


def test_fixed_ids_survive_restart_without_duplicates(tmp_path):
    cfg = write_config(tmp_path)
    url = load_config(cfg)["store"]["url"]
    for _ in range(2):   # start, stop, start again on the same database
        sched = make_scheduler(url, blocking=False)
        sched.start(paused=True)
        ids = configure(sched, cfg)
        got = sorted(j.id for j in sched.get_jobs())
        sched.shutdown(wait=False)
    assert got == sorted(ids) == sorted(["scan", "send", "remind-0900", "remind-1500"])
    sched = make_scheduler(url, blocking=False)
    sched.start(paused=True)
    job = sched.get_job("scan")
    assert job.coalesce and job.max_instances == 1 and job.misfire_grace_time == 3600
    sched.shutdown(wait=False)


def test_catch_up_after_machine_off(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    fill(open_store(url))
    early = scan_once(open_store(url), now=datetime(2026, 3, 2, 10, 30), rules=RULES)
    assert early.overdue == 0 and early.new_penalties == 0
    # Off for six days; the first run afterwards sees every breach of the week, once.
    later = scan_once(open_store(url), now=datetime(2026, 3, 2, 10, 30) + timedelta(days=6), rules=RULES)
    assert later.overdue == 4 and later.new_penalties == 2 * (1 + 1 + 4)
    again = scan_once(open_store(url), now=datetime(2026, 3, 8, 11, 0), rules=RULES)
    assert again.new_penalties == 0


def test_lock_refuses_second_copy(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    with DaemonLock(store), pytest.raises(StoreLocked):
        DaemonLock(open_store(f"sqlite:///{tmp_path / 'state.db'}")).acquire()
    with DaemonLock(store):
        pass


def test_config_errors_and_docs_list_every_key(tmp_path):
    with pytest.raises(BadSetting, match=r"\[mail\] prot"):
        load_config(write_config(tmp_path, "[mail]\nprot = 25\n"))
    with pytest.raises(BadSetting, match=r"\[mail\] port"):
        load_config(write_config(tmp_path, '[mail]\nport = "25"\n'))
    from pathlib import Path
    doc = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text(encoding="utf-8")
    for k in KEYS:
        assert f"`{k.section}.{k.name}`" in doc, k


def _watched_config(tmp_path, n):
    """A shop folder of ``n`` complaints and a ``run`` config that watches it: (folder, config)."""
    from tests.support.workbooks import NOW, sample_rows, write_rows

    shop = tmp_path / "SH01"
    shop.mkdir()
    write_rows(shop / "a.xlsx", sample_rows(n, seed=1, now=NOW), shop="SH01")
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[store]\nurl = "state.db"\nmerged = "merged.xlsx"\n[sync]\nsources = ["{shop}"]\n',
                   encoding="utf-8")
    return shop, cfg


def test_run_starts_the_watcher_from_the_sync_section(tmp_path):
    """`complaint-desk run` wires the sync daemon in through the CLI's hook (cards stay apart)."""
    import time

    from complaint_desk.wiring import start_watcher
    from scheduler.config import load_config

    shop, cfg_path = _watched_config(tmp_path, 5)
    cfg = load_config(cfg_path)
    assert cfg["sync"]["sources"] == [str(shop)]
    daemon = start_watcher(None, cfg)
    merged = tmp_path / "merged.xlsx"
    deadline = time.monotonic() + 60
    try:
        while not merged.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        daemon.stop()
    assert merged.exists()
    with pytest.raises(BadSetting, match="sources"):
        bad = tmp_path / "bad.toml"
        bad.write_text('[store]\nurl = "s.db"\nmerged = "m.xlsx"\n[sync]\nsources = [1]\n', encoding="utf-8")
        load_config(bad)


def test_a_read_while_a_scan_runs_is_scanned_right_after_it(tmp_path):
    """The watcher asks for a scan after every read (seed 004: a severe complaint is reported
    upward at once). A read that came while a scan ran was skipped by APScheduler ("maximum
    number of running instances reached") and left for the interval, an hour here."""
    import threading
    import time

    from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED

    from complaint_core.merged.render import _lock_for
    from complaint_desk.wiring import scan_soon
    from scheduler.daemon import scheduler_for

    cfg = tmp_path / "desk.toml"
    cfg.write_text('[store]\nurl = "state.db"\nmerged = "汇总.xlsx"\n[mail]\noutbox_dir = "outbox"\n'
                   "[scan]\ninterval_minutes = 60\n", encoding="utf-8")
    loaded = load_config(cfg)
    store = open_store(loaded["store"]["url"])
    fill(store)
    store.engine.dispose()
    started, done = threading.Event(), []
    render = _lock_for(Path(loaded["store"]["merged"]))
    render.acquire()   # the scan at start waits at its rewrite of the workbook: a scan that runs
    sched = scheduler_for(cfg, blocking=False)
    sched.add_listener(lambda e: started.set() if e.job_id == "scan" else None, EVENT_JOB_SUBMITTED)
    sched.add_listener(lambda e: done.append(e.job_id), EVENT_JOB_EXECUTED)
    sched.start()
    try:
        assert started.wait(30)
        read = scan_soon(sched)
        for _ in range(3):   # three shops saved while it ran
            read(None)
            time.sleep(0.2)
        assert done == []
        render.release()
        deadline = time.monotonic() + 60
        while len(done) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
    finally:
        if render.locked():
            render.release()
        sched.shutdown(wait=True)
    # the scan at start, then one or two for the reads (never one per read, nor none)
    assert done[0] == "scan" and 2 <= len(done) <= 3, done


def _job_config(tmp_path: Path) -> Path:
    """A daemon's config with a merged workbook, over a store holding a few complaints."""
    cfg = tmp_path / "desk.toml"
    cfg.write_text('[store]\nurl = "state.db"\nmerged = "汇总.xlsx"\n[mail]\noutbox_dir = "outbox"\n',
                   encoding="utf-8")
    store = open_store(load_config(cfg)["store"]["url"])
    fill(store)
    store.engine.dispose()
    return cfg


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_jobs_release_the_store_after_each_run(tmp_path):
    """The daemon runs a job every few minutes for months: each run must close what it opened."""
    from scheduler.daemon import scan_job, send_job

    cfg = _job_config(tmp_path)
    scan_job(str(cfg))   # the first run imports, creates the tables and opens the log: not a leak
    send_job(str(cfg))
    gc.collect()
    before = open_fds()
    # With the collector off, only what a run closes itself is closed: an engine left for the
    # collector keeps the database, its -wal and -shm files open run after run.
    gc.disable()
    try:
        for _ in range(20):
            scan_job(str(cfg))
            send_job(str(cfg))
        after = open_fds()
    finally:
        gc.enable()
    assert after <= before, (before, after)
    assert (tmp_path / "汇总.xlsx").exists()


def test_timezone_key_sets_the_scheduler_and_the_reminder_times(tmp_path):
    from zoneinfo import ZoneInfo

    from scheduler.daemon import scheduler_for

    cfg = write_config(tmp_path, 'timezone = "Asia/Shanghai"\n')   # inside write_config's [scan]
    assert load_config(cfg)["scan"]["timezone"] == "Asia/Shanghai"
    sched = scheduler_for(cfg, blocking=False)
    sched.start(paused=True)
    try:
        assert sched.timezone == ZoneInfo("Asia/Shanghai")
        remind = sched.get_job("remind-0900").next_run_time
        now = datetime.now(UTC)
        # 09:00 in Shanghai is 01:00 UTC, whatever zone this machine is in, and within a day.
        assert remind.utcoffset() == timedelta(hours=8) and (remind.hour, remind.minute) == (9, 0)
        assert remind.astimezone(UTC).hour == 1 and now < remind <= now + timedelta(days=1)
        # The first scan is due now, not eight hours off (a naive "now" read in the other zone).
        assert abs(sched.get_job("scan").next_run_time - now) < timedelta(minutes=1)
    finally:
        sched.shutdown(wait=False)


def test_jobs_scan_as_of_the_configured_zones_wall_clock(tmp_path):
    """The store holds naive shop times: a job's "now" is the wall clock of [scan] timezone."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from complaint_core.store.sched_tables import penalty_events
    from scheduler.daemon import scan_job

    # A zone 14 hours ahead of UTC: its wall clock differs from this machine's unless the
    # machine is on Kiritimati itself.
    far = "Pacific/Kiritimati"
    cfg = write_config(tmp_path, f'timezone = "{far}"\n')
    url = load_config(cfg)["store"]["url"]
    fill(open_store(url))
    expected = datetime.now(ZoneInfo(far)).replace(tzinfo=None)
    scan_job(str(cfg))
    with open_store(url).begin() as c:
        seen = {r[0] for r in c.execute(select(penalty_events.c.first_seen))}
    assert len(seen) == 1 and abs(seen.pop() - expected) < timedelta(minutes=1)


def test_unknown_timezone_is_refused_naming_the_key(tmp_path):
    with pytest.raises(BadSetting, match=r"\[scan\] timezone") as e:
        load_config(write_config(tmp_path, 'timezone = "Asia/Shangai"\n'))
    assert "Asia/Shangai" in str(e.value)


def test_a_stop_signal_only_raises_a_flag_even_inside_a_held_lock():
    """SIGTERM and Ctrl+C land wherever the main thread is. An exception raised there (the
    daemon's SystemExit before) could leave a lock of the job store held, and the shutdown then
    waited for it forever; the handler now only raises the flag ``run`` looks at."""
    import os
    import signal
    import threading

    from scheduler.daemon import stop_on_signals

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stopped = stop_on_signals()
        assert not stopped()
        held = threading.Lock()
        for sig in (signal.SIGTERM, signal.SIGINT):
            held.acquire()   # the store's or the scheduler's lock, say
            os.kill(os.getpid(), sig)   # handled before the next instruction: nothing raised
            assert held.locked()
            held.release()
        assert stopped()
        # a copy started in the background of a script keeps Ctrl+C ignored
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_on_signals()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_run_ends_with_an_error_when_its_watcher_stops(tmp_path):
    """A ``run`` whose folder watcher has stopped only waits: it now ends with exit code 1, so
    that the service manager (NSSM, systemd) starts a copy that merges again."""
    import threading
    import time

    from complaint_desk.wiring import SYNC
    from scheduler.daemon import run

    _shop, cfg = _watched_config(tmp_path, 3)
    SYNC.watcher = None
    code: list[int] = []
    runner = threading.Thread(target=lambda: code.append(run(cfg, SYNC)), daemon=True)
    runner.start()
    deadline = time.monotonic() + 60
    while not (SYNC.watcher is not None and SYNC.watcher.merges) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert SYNC.alive() and runner.is_alive()
    SYNC.watcher.stop()   # as if its worker had died
    runner.join(60)
    assert code == [1]
    # the next run takes the lock again: nothing was left held
    with DaemonLock(open_store(f"sqlite:///{tmp_path / 'state.db'}")):
        pass


def test_a_scan_that_finds_the_workbook_held_open_says_so_in_one_line(tmp_path, excel_holds, caplog):
    """Excel holding the merged workbook (Windows) leaves the scan's work stored and one warning
    line; APScheduler's executor logs a traceback for a job that raises, every interval."""
    from scheduler.daemon import scan_job

    cfg = _job_config(tmp_path)
    scan_job(str(cfg))
    written = (tmp_path / "汇总.xlsx").read_bytes()
    excel = excel_holds(tmp_path / "汇总.xlsx")
    excel.open_now = True
    store = open_store(load_config(cfg)["store"]["url"])
    _type(store, "经理：今日回访")   # the workbook is to be written again
    store.engine.dispose()
    caplog.clear()
    with caplog.at_level("INFO", logger="scheduler.daemon"):
        scan_job(str(cfg))   # raises nothing
    said = [r for r in caplog.records if "汇总工作簿被占用" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING" and said[0].exc_info is None
    assert excel.refused > 0 and (tmp_path / "汇总.xlsx").read_bytes() == written
    excel.open_now = False
    scan_job(str(cfg))
    assert (tmp_path / "汇总.xlsx").read_bytes() != written


def _type(store, text: str) -> None:
    """A manager's cell typed since the last write (what the workbook shows has changed)."""
    from sqlalchemy import insert

    from complaint_core.store import tables as t

    with store.begin() as c:
        c.execute(insert(t.manager_edits).values(sheet="全部投诉", row_key='["R0"]', column="manager_approval",
                                                value=text, seen_at=datetime(2026, 3, 3, 12)))
