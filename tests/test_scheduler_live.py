"""`complaint-desk run --config FILE` as a real process: first scan, one copy per store, clean stop.

SQLite: the merged workbook and the .eml outbox appear from the first scan; a second copy is
refused; SIGTERM stops cleanly and a restart duplicates nothing. PostgreSQL: the same refusal
through the advisory lock, and a SIGKILLed daemon's lock goes with its session.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from complaint_core.rules_book import Person, Rules, build_rules_template
from complaint_desk.demo_data import write_rows
from scheduler.lock import PG_LOCK_ID

ROOT = Path(__file__).resolve().parents[1]
JOB_IDS = {"scan", "send", "remind-0900", "remind-1500"}
STAFF = (("前台", "李娜", "王经理"), ("售后部", "张强", "赵主管"))
LOCKED = "另一个后台进程已在运行"


STARTED = "Scheduler started"   # APScheduler's own log line, printed with -v


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Daemon:
    """One `complaint-desk run` process with its output in files (a pipe could fill and block it)."""

    def __init__(self, cfg: Path, name: str) -> None:
        self.out, self.err = cfg.parent / f"{name}.out", cfg.parent / f"{name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            # Ctrl+C as a console delivers it, even when the test run itself was started in the
            # background (which leaves SIGINT ignored in every child)
            self.proc = subprocess.Popen([sys.executable, "-m", "complaint_desk", "-v", "run", "--config", str(cfg)],
                                         cwd=ROOT, stdout=out, stderr=err,
                                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    @property
    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)


def shop_rows(shop: str, anchor: datetime, n: int) -> list[dict[str, Any]]:
    """Open and late complaints whose every deadline falls 10+ hours of day away from now, so a
    restart a few seconds later cannot cross a "started day late" boundary and add a penalty."""
    rows = []
    for i in range(n):
        received = anchor - timedelta(days=i + 1)
        dept, person, _head = STAFF[i % len(STAFF)]
        row: dict[str, Any] = dict(
            complaint_id=f"{shop}-{received:%Y%m%d}-{i + 1:03d}", shop=shop, received_at=received,
            received_by="王小明", channel="电话", customer_name=f"顾客{i}", customer_phone="13800138000",
            category="服务态度", description="店员态度冷淡，多次询问无人回应。", severity="一般",
            validity="成立", responsible_dept=dept, responsible_person=person, status="处理中")
        if i % 3 == 0:
            row["first_contact_at"] = received + timedelta(hours=1)
        rows.append(row)
    return rows


def prepare_shop_store(tmp_path: Path) -> Path:
    """Two shops merged into state.db by the sync card, a rules workbook with staff e-mails, the config."""
    from sync.api import merge_once

    now = datetime.now().replace(microsecond=0)
    anchor = (now - timedelta(hours=12)).replace(second=0)
    sources = []
    for shop, n in (("SH01", 6), ("SH02", 4)):
        folder = tmp_path / "shops" / shop
        folder.mkdir(parents=True)
        write_rows(folder / f"{shop}_投诉登记.xlsx", shop_rows(shop, anchor, n), shop=shop)
        sources.append(folder)
    report = merge_once(sources, tmp_path / "prefill.xlsx", state_url=str(tmp_path / "state.db"), now=now)
    assert report.rows == 10, report
    staff = [Person(name, dept, head, f"{name}@example.com") for dept, name, head in STAFF]
    staff += [Person(head, "门店管理", "", f"{head}@example.com") for head in sorted({h for _d, _n, h in STAFF})]
    build_rules_template(tmp_path / "rules.xlsx", Rules(staff=tuple(staff)))
    cfg = tmp_path / "desk.toml"
    cfg.write_text('[store]\nurl = "state.db"\nmerged = "汇总.xlsx"\n[rules]\npath = "rules.xlsx"\n'
                   '[mail]\noutbox_dir = "outbox"\nsender = "desk@shop.example"\n', encoding="utf-8")
    return cfg


def sqlite_rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as c:
        return c.execute(sql).fetchall()


def test_run_scans_at_once_refuses_a_second_copy_and_restarts_cleanly(tmp_path):
    cfg = prepare_shop_store(tmp_path)
    db, merged, outbox = tmp_path / "state.db", tmp_path / "汇总.xlsx", tmp_path / "outbox"
    first = Daemon(cfg, "first")
    daemons = [first]
    try:
        # The scan job's first run is at start (next_run_time = now): workbook and mails appear.
        wait_for(lambda: merged.exists() and list(outbox.glob("*.eml")), "the first scan")
        assert {"汇总", "逾期", "处罚"} <= set(load_workbook(merged, read_only=True).sheetnames)
        jobs = sqlite_rows(db, "SELECT id FROM apscheduler_jobs")
        assert sorted(j for (j,) in jobs) == sorted(JOB_IDS)

        second = Daemon(cfg, "second")
        daemons.append(second)
        assert second.proc.wait(timeout=60) != 0
        assert LOCKED in second.stderr and "Traceback" not in second.stderr
        assert first.alive()

        penalties = sqlite_rows(db, "SELECT count(*) FROM penalty_events")[0][0]
        mails = sorted(p.name for p in outbox.glob("*.eml"))
        assert penalties > 0 and len(mails) == 4   # 李娜, 张强 and their two heads
        from email import message_from_bytes
        first_mail = message_from_bytes((outbox / mails[0]).read_bytes())
        assert first_mail["From"] == "desk@shop.example"   # the config's mail.sender
        assert first.stop(signal.SIGTERM) == 0, first.stderr   # a clean shutdown, not killed
        assert "后台进程已停止" in first.stderr

        third = Daemon(cfg, "third")
        daemons.append(third)
        # (a scan that finds nothing new leaves the workbook alone: the log line tells it ran)
        wait_for(lambda: "扫描完成" in third.stderr, "the restart's first scan")
        jobs = sqlite_rows(db, "SELECT id FROM apscheduler_jobs")
        assert len(jobs) == len(JOB_IDS) and {j for (j,) in jobs} == JOB_IDS
        assert sorted(p.name for p in outbox.glob("*.eml")) == mails
        assert sqlite_rows(db, "SELECT count(*) FROM penalty_events")[0][0] == penalties
        assert sqlite_rows(db, "SELECT state, count(*) FROM outbox GROUP BY state") == [("sent", 4)]
        assert third.stop(signal.SIGINT) == 0, third.stderr   # Ctrl+C in a console: as clean
        assert "后台进程已停止" in third.stderr and "Traceback" not in third.stderr
    finally:
        for d in daemons:
            d.kill()


def test_ctrl_c_or_sigterm_at_any_moment_stops_cleanly(tmp_path):
    """The signal only raises a flag: wherever the daemon is (its first scan running, writing
    the workbook, idle), it finishes the running job and exits 0 with its lock released."""
    from complaint_core.store import open_store
    from scheduler.lock import DaemonLock

    cfg = prepare_shop_store(tmp_path)
    for i, wait in enumerate([0.0, 0.3, 1.0, 3.0]):
        d = Daemon(cfg, f"run{i}")
        try:
            wait_for(lambda d=d: STARTED in d.stderr, "the daemon to start")
            time.sleep(wait)
            assert d.stop(signal.SIGINT if i % 2 else signal.SIGTERM, timeout=60) == 0, d.stderr
            assert "Traceback" not in d.stderr and "后台进程已停止" in d.stderr, d.stderr
        finally:
            d.kill()
    store = open_store(tmp_path / "state.db")
    DaemonLock(store).acquire().release()   # free: raises StoreLocked if a stop had kept it
    store.engine.dispose()


def pg_advisory_holders(url: str) -> int:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        return c.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = %s "
                         "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                         (PG_LOCK_ID,)).fetchone()[0]


def pg_job_ids(url: str) -> set[str]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        try:
            return {r[0] for r in c.execute("SELECT id FROM apscheduler_jobs")}
        except psycopg.errors.UndefinedTable:
            return set()


def test_postgres_advisory_lock_one_copy_and_released_on_sigkill(tmp_path, pg_url):
    cfg = tmp_path / "desk.toml"
    cfg.write_text(f'[store]\nurl = "{pg_url}"\n[mail]\noutbox_dir = "outbox"\n', encoding="utf-8")
    first = Daemon(cfg, "first")
    daemons = [first]
    try:
        wait_for(lambda: pg_job_ids(pg_url) == JOB_IDS, "the jobs in PostgreSQL's apscheduler_jobs")
        assert pg_advisory_holders(pg_url) == 1
        second = Daemon(cfg, "second")
        daemons.append(second)
        assert second.proc.wait(timeout=60) != 0
        assert LOCKED in second.stderr and "Traceback" not in second.stderr
        assert first.alive()

        first.stop(signal.SIGKILL)   # no cleanup at all: the server ends the session, and the lock
        wait_for(lambda: pg_advisory_holders(pg_url) == 0, "the advisory lock to go with the session", 20)
        third = Daemon(cfg, "third")
        daemons.append(third)
        wait_for(lambda: pg_advisory_holders(pg_url) == 1, "the new copy to take the lock")
        time.sleep(1.0)
        assert third.alive(), third.stderr
        assert pg_job_ids(pg_url) == JOB_IDS
        assert third.stop(signal.SIGTERM) == 0, third.stderr
        assert pg_advisory_holders(pg_url) == 0
    finally:
        for d in daemons:
            d.kill()


def test_a_complaint_to_escalate_alerts_the_managers_when_merged_not_at_the_next_interval(tmp_path):
    # The service watches the shop folders; its scan runs every 10 hours. A shop saves a complaint
    # that threatens the press: the managers' alert goes out within seconds of the merge.
    cfg = prepare_shop_store(tmp_path)
    shops = tmp_path / "shops"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("[rules]", "[scan]\ninterval_minutes = 600\n[rules]")
                   + f'[sync]\nsources = ["{(shops / "SH01").as_posix()}", "{(shops / "SH02").as_posix()}"]\n',
                   encoding="utf-8")
    outbox, merged = tmp_path / "outbox", tmp_path / "汇总.xlsx"
    daemon = Daemon(cfg, "watch")
    try:
        wait_for(lambda: merged.exists() and list(outbox.glob("*.eml")), "the first scan")

        def alerts() -> list[Path]:
            return [p for p in outbox.glob("*.eml") if "预警上报" in _subject(p)]

        assert not alerts()
        now = datetime.now().replace(second=0, microsecond=0)
        rows = shop_rows("SH01", now - timedelta(hours=12), 6)
        rows.append(dict(rows[0], complaint_id="SH01-NEW-001", received_at=now - timedelta(minutes=5),
                         description="再不处理我就找电视台曝光", first_contact_at=None))
        write_rows(shops / "SH01" / "SH01_投诉登记.xlsx", rows, shop="SH01")
        wait_for(alerts, "the escalation alert", timeout=60)
        assert daemon.alive(), daemon.stderr
    finally:
        daemon.kill()


def _subject(path: Path) -> str:
    import email
    from email import policy

    return str(email.message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"])
