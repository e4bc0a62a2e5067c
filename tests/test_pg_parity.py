"""The scheduler on SQLite and on PostgreSQL: the same shop workbooks give the same penalties,
the same reminder mails (each delivered once) and the same 逾期/处罚/汇总 sheets; two scanners
racing on one database (PostgreSQL or SQLite) double neither a penalty nor a mail.

Both stores run the whole chain once per module (a module fixture): three shops' workbooks
merged by the sync card, two scans at the same clock, the day's digests written as .eml files,
a scan a day later, its digests through a real aiosmtpd server, and the merged workbook
rendered with every sheet. The tests then check each run and compare them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import event, select

import scheduler.api  # noqa: F401  (registers the scheduler tables before the store opens)
from complaint_core.rules_book import Person, Rules
from complaint_core.store import Store, open_store
from complaint_core.store.sched_tables import outbox, penalty_events
from complaint_desk.demo_data import EMAILS, STAFF
from scheduler.api import ScanReport, scan_once, send_due
from scheduler.outbox import SendReport
from scheduler.transport import EmlFolderTransport, SmtpTransport
from sync.api import merge_once
from tests.support.pg import libpq_url, new_database
from tests.support.smtp import SmtpServer
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook
from tests.test_mail_outbox import RULES as TWO_PEOPLE
from tests.test_mail_outbox import fill

BACKENDS = ("sqlite", "postgresql")
SHOPS = ("SH01", "SH02", "SH03")
ROWS_PER_SHOP = 20
DAY2 = NOW + timedelta(days=1)
SHEETS = ("逾期", "处罚", "汇总")

# The demo shop's staff with addresses, so the scan has people and department heads to remind.
RULES = Rules(staff=tuple([Person(name, dept, head, f"{EMAILS[name]}@example.com") for dept, name, head in STAFF]
                          + [Person(head, "门店管理", "", f"{EMAILS[head]}@example.com")
                             for head in sorted({h for _d, _n, h in STAFF})]))


@contextmanager
def opened(url: str) -> Iterator[Store]:
    """A store the way a restarted process sees it: its own engine, closed afterwards."""
    store = open_store(url)
    try:
        yield store
    finally:
        store.engine.dispose()


def penalty_rows(url: str) -> list[tuple]:
    with opened(url) as store, store.begin() as c:
        return [tuple(r) for r in c.execute(select(penalty_events).order_by(penalty_events.c.event_id))]


def outbox_rows(url: str) -> list[dict[str, Any]]:
    """Every outbox row without its id: the id is a counter of the database, not shop data."""
    with opened(url) as store, store.begin() as c:
        rows = c.execute(select(outbox).order_by(outbox.c.dedupe_key))
        return [{k: v for k, v in r._mapping.items() if k != "id"} for r in rows]


def grid(path: Path, sheet: str) -> list[list[Any]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


@dataclass
class Run:
    """What one store made of the same shop workbooks."""

    first: ScanReport
    again: ScanReport
    day2: ScanReport
    events_first: list[tuple]
    events_again: list[tuple]
    events_day2: list[tuple]
    outbox: list[dict[str, Any]]
    eml_sends: list[SendReport]
    eml_files: list[str]
    eml_files_after_rescan: list[str]
    smtp_sends: list[SendReport]
    smtp_mails: list[tuple[str, str, str, str]]   # To, Subject, Message-ID, text body
    sheets: dict[str, list[list[Any]]] = field(default_factory=dict)


def run_chain(url: str, folders: list[Path], work: Path) -> Run:
    work.mkdir()
    merged, eml_dir = work / "汇总.xlsx", work / "outbox"
    report = merge_once(folders, merged, state_url=url, now=NOW)
    assert report.rows == len(SHOPS) * ROWS_PER_SHOP and not report.failed, report
    with opened(url) as store:
        first = scan_once(store, now=NOW, rules=RULES)
    events_first = penalty_rows(url)
    with opened(url) as store:   # a second run at the same clock, as after a restart
        again = scan_once(store, now=NOW, rules=RULES)
    events_again = penalty_rows(url)
    eml_sends = []
    for _ in range(2):
        with opened(url) as store:
            eml_sends.append(send_due(store, EmlFolderTransport(eml_dir), now=NOW))
    eml_files = sorted(p.name for p in eml_dir.glob("*.eml"))
    with opened(url) as store:
        day2 = scan_once(store, now=DAY2, rules=RULES)
    events_day2 = penalty_rows(url)
    server = SmtpServer(work, "ok", tls=False, auth=False)
    try:
        smtp_sends = []
        for _ in range(2):
            with opened(url) as store:
                smtp_sends.append(send_due(store, SmtpTransport("127.0.0.1", server.port, tls="none", timeout=5),
                                           now=DAY2 + timedelta(minutes=5)))
        mails = [(str(m["To"]), str(m["Subject"]), str(m["Message-ID"]), m.get_body(("plain",)).get_content())
                 for m in server.messages]
    finally:
        server.stop()
    # The day-2 mails went by SMTP: the .eml folder must not have gained or redone any.
    eml_after = sorted(p.name for p in eml_dir.glob("*.eml"))
    merge_once(folders, merged, state_url=url, now=DAY2)
    return Run(first, again, day2, events_first, events_again, events_day2, outbox_rows(url), eml_sends,
               eml_files, eml_after, smtp_sends, sorted(mails), {s: grid(merged, s) for s in SHEETS})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, pg_server: str) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("parity")
    folders = []
    for i, shop in enumerate(SHOPS):
        folder = root / "shops" / shop
        folder.mkdir(parents=True)
        write_shop_workbook(folder / f"{shop}_投诉登记.xlsx",
                            sample_rows(ROWS_PER_SHOP, seed=40 + i, now=NOW, shop=shop))
        folders.append(folder)
    urls = {"sqlite": str(root / "state.sqlite"), "postgresql": new_database(pg_server)}
    return {b: run_chain(urls[b], folders, root / b) for b in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
def test_rescans_double_nothing(runs: dict[str, Run], backend: str) -> None:
    run = runs[backend]
    assert run.first.overdue > 0 and run.first.new_penalties > 0 and run.first.queued_mails > 0
    assert len(run.events_first) == run.first.new_penalties
    # The same clock again: nothing new, every stored event exactly as the first scan left it.
    assert (run.again.new_penalties, run.again.queued_mails) == (0, 0)
    assert run.events_again == run.events_first
    # A day later: the day's new per-day penalties are added, yesterday's rows are untouched.
    assert run.day2.new_penalties > 0
    assert len(run.events_day2) == len(run.events_first) + run.day2.new_penalties
    assert set(run.events_first) <= set(run.events_day2)
    # One penalty per complaint, rule, deadline, day and reason: never the same one under two ids.
    cols = [c.name for c in penalty_events.columns]
    keys = Counter(tuple(r[cols.index(k)] for k in ("record_id", "rule_id", "kind", "day", "why"))
                   for r in run.events_day2)
    assert keys and max(keys.values()) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_mail_per_person_kind_and_day_delivered_once(runs: dict[str, Run], backend: str) -> None:
    run = runs[backend]
    # Escalation alerts (escalate|record|address) are once per complaint, not per day.
    digests = [r for r in run.outbox if not r["dedupe_key"].startswith("escalate|")]
    keys = Counter(tuple(r["dedupe_key"].split("|")) for r in digests)
    assert len(run.outbox) == run.first.queued_mails + run.day2.queued_mails
    assert max(keys.values()) == 1
    assert {day for _p, _k, day in keys} == {NOW.date().isoformat(), DAY2.date().isoformat()}
    assert {kind for _p, kind, _d in keys} == {"person", "manager"}
    # Day 1 through the .eml folder: each mail written once, a second run writes nothing.
    assert [s.sent for s in run.eml_sends] == [run.first.queued_mails, 0]
    assert len(run.eml_files) == run.first.queued_mails
    assert run.eml_files_after_rescan == run.eml_files
    # Day 2 through a real SMTP server: each mail arrives once, with the outbox's Message-ID.
    assert [s.sent for s in run.smtp_sends] == [run.day2.queued_mails, 0]
    day2_ids = sorted(r["message_id"] for r in run.outbox if r["created_at"] >= DAY2)
    assert sorted(m[2] for m in run.smtp_mails) == day2_ids
    assert {r["state"] for r in run.outbox} == {"sent"}


def test_sqlite_and_postgresql_give_the_same_results(runs: dict[str, Run]) -> None:
    lite, pg = runs["sqlite"], runs["postgresql"]
    assert (lite.first, lite.again, lite.day2) == (pg.first, pg.again, pg.day2)
    assert lite.events_day2 == pg.events_day2
    assert lite.outbox == pg.outbox
    assert lite.eml_files == pg.eml_files
    assert lite.smtp_mails == pg.smtp_mails
    for sheet in SHEETS:
        assert len(lite.sheets[sheet]) > 2, sheet
        assert lite.sheets[sheet] == pg.sheets[sheet], sheet


# --- Two scanners at once on one database ------------------------------------------------------
# One daemon per store is enforced, but `complaint-desk scan` from a manager's shell may run while
# the daemon scans. A gate holds the write lock the scans need (PostgreSQL: an EXCLUSIVE lock on
# the table, reads still pass; SQLite: the database's write lock, WAL readers still pass) until
# both scanners have read the table and are about to insert; then both go: the interleaving where
# each saw no rows and both insert the same keys, every time, not only when the timing is unlucky.

LATER = datetime(2026, 3, 8, 11, 0)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(params=BACKENDS)
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "state.sqlite")
    return request.getfixturevalue("pg_url")


def hold_writes(url: str, table: str) -> Any:
    """A connection that keeps every scanner from inserting into ``table`` until it is closed."""
    if url.startswith("postgresql"):
        import psycopg

        gate = psycopg.connect(libpq_url(url))   # not autocommit: the lock lasts until close
        gate.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        return gate
    import sqlite3

    gate = sqlite3.connect(url, isolation_level=None)
    gate.execute("BEGIN IMMEDIATE")
    return gate


def race(url: str, table: str, rules: Rules) -> list[ScanReport]:
    reports: list[ScanReport] = []
    errors: list[BaseException] = []
    at_insert = [threading.Event(), threading.Event()]

    def scanner(reached: threading.Event) -> None:
        try:
            with opened(url) as store:
                @event.listens_for(store.engine, "before_cursor_execute")
                def _seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                    if statement.lstrip().startswith(f"INSERT INTO {table} "):
                        reached.set()   # its read of the table is done; the insert waits for the gate

                reports.append(scan_once(store, now=LATER, rules=rules))
        except BaseException as e:  # noqa: BLE001  (reported by the test, not lost with the thread)
            errors.append(e)

    gate = hold_writes(url, table)
    try:
        threads = [threading.Thread(target=scanner, args=(r,)) for r in at_insert]
        for t in threads:
            t.start()
        wait_for(lambda: all(r.is_set() for r in at_insert) or errors, f"both scanners to reach {table}")
    finally:
        gate.close()   # releases the lock: both inserts now contend
    for t in threads:
        t.join(60)
    assert not errors, errors
    return reports


@pytest.mark.parametrize("table", ["penalty_events", "outbox"])
def test_racing_scanners_double_nothing(state_url: str, table: str) -> None:
    with opened(state_url) as store:
        fill(store)
    # Racing on the outbox alone: rules without penalties, so the scans only queue mails.
    rules = TWO_PEOPLE if table == "penalty_events" else Rules(staff=TWO_PEOPLE.staff, penalties=())
    reports = race(state_url, table, rules)
    events, mails = penalty_rows(state_url), outbox_rows(state_url)
    assert len(mails) == 2 and len({m["dedupe_key"] for m in mails}) == 2
    assert sorted(r.queued_mails for r in reports) == [0, 2]
    if table == "penalty_events":
        assert len(events) == 12
        assert sorted(r.new_penalties for r in reports) == [0, 12]
    else:
        assert events == []
    # A third scan finds everything in place.
    with opened(state_url) as store:
        third = scan_once(store, now=LATER, rules=rules)
    assert (third.new_penalties, third.queued_mails) == (0, 0)
