"""The overdue scan as a query: a rescan decodes only what can have changed, and gives exactly
what a scan of every record would have given (penalties, mails, robot posts)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select

from bench.data import rows_for, write_shop
from complaint_core.reader import read_workbook
from complaint_core.rules_book import Person, Rules
from complaint_core.store import open_store
from complaint_core.store import tables as t
from complaint_core.store.ingest import ingest_table
from complaint_core.store.sched_tables import outbox, penalty_events
from scheduler.api import SCAN_STATE, scan_once

START = datetime(2026, 9, 20, 9, 0)
RULES = Rules(staff=(Person("张伟", dept="销售部", email="zw@example.cn", head="王芳"),
                     Person("王芳", dept="销售部", head="", email="wf@example.cn")))


def _ingest(store, path: Path, now: datetime) -> None:
    st = path.stat()
    ingest_table(store, path, read_workbook(path), [], file_hash=str(st.st_mtime_ns), size=st.st_size,
                 mtime=st.st_mtime, now=now)


def _outcome(store) -> tuple[set, set]:
    with store.engine.connect() as c:
        events = set(c.execute(select(penalty_events.c.event_id, penalty_events.c.amount)).all())
        queued = set(c.execute(select(outbox.c.dedupe_key)).scalars())
    return events, queued


def _forget_last_scan(store) -> None:
    with store.begin() as c:
        c.execute(delete(t.chain_rules).where(t.chain_rules.c.name == SCAN_STATE))


def test_rescans_give_what_full_scans_give_and_a_quiet_rescan_writes_nothing(tmp_path: Path) -> None:
    shop = write_shop(tmp_path / "shops" / "S001" / "S001.xlsx", rows_for(150, seed=3), shop="S001")
    inc, full = open_store(tmp_path / "inc.sqlite"), open_store(tmp_path / "full.sqlite")
    for store in (inc, full):
        _ingest(store, shop, START)
    # every quarter hour for a while, then days later (per-day penalties grow), a shop's edit
    # in between, and the first scan of each new day (its digests)
    times = [START + timedelta(minutes=15 * i) for i in range(6)]
    times += [START + timedelta(days=d, hours=h) for d in (1, 2, 5) for h in (0, 3)]
    times += [START + timedelta(days=40)]
    scans = []
    for i, now in enumerate(times):
        if i == 7:   # the shop saves new content: changed rows are rescanned
            write_shop(shop, rows_for(150, seed=4), shop="S001")
            os.utime(shop, (now.timestamp(), now.timestamp()))
            for store in (inc, full):
                _ingest(store, shop, now)
        _forget_last_scan(full)
        rep = scan_once(inc, now=now, rules=RULES)
        ref = scan_once(full, now=now, rules=RULES)
        scans.append(rep)
        assert ref.full and rep.full == (i == 0)
        assert (rep.records, rep.new_penalties, rep.queued_mails, rep.overdue) == (
            ref.records, ref.new_penalties, ref.queued_mails, ref.overdue), now
        assert _outcome(inc) == _outcome(full), now
    assert all(s.scanned < 150 for i, s in enumerate(scans[1:], 1) if i != 7)
    assert any(s.new_penalties for s in scans[1:])   # time alone made new per-day penalties
    # nothing changed and no deadline passed: nothing is decoded, nothing written
    def written() -> list:
        with inc.engine.connect() as c:
            return c.execute(select(t.chain_rules)).all()

    before = written()
    quiet = scan_once(inc, now=times[-1] + timedelta(seconds=1), rules=RULES)
    assert (quiet.scanned, quiet.new_penalties, quiet.queued_mails, quiet.queued_posts) == (0, 0, 0, 0)
    assert written() == before and _outcome(inc) == _outcome(full)


def test_new_rules_rescan_everything(tmp_path: Path) -> None:
    shop = write_shop(tmp_path / "shops" / "S001" / "S001.xlsx", rows_for(40, seed=5), shop="S001")
    store = open_store(tmp_path / "s.sqlite")
    _ingest(store, shop, START)
    assert scan_once(store, now=START, rules=RULES).full
    assert not scan_once(store, now=START + timedelta(minutes=15)).full
    assert scan_once(store, now=START + timedelta(minutes=30), rules=Rules()).full
    # a clock set back (a scan --now in the past) is never trusted to be incremental
    assert scan_once(store, now=START).full


def test_a_render_with_nothing_new_leaves_the_workbook_as_it_is(tmp_path: Path) -> None:
    from complaint_core.merged.render import render_merged

    shop = write_shop(tmp_path / "shops" / "S001" / "S001.xlsx", rows_for(60, seed=6), shop="S001")
    store = open_store(tmp_path / "s.sqlite")
    _ingest(store, shop, START)
    out = tmp_path / "汇总.xlsx"
    scan_once(store, now=START, rules=RULES)
    first = render_merged(store, out, now=START)
    stamp = out.stat().st_mtime_ns
    # the next quarter-hour's scan finds nothing new (what `run` does every 15 minutes)
    assert scan_once(store, now=START + timedelta(seconds=30)).new_penalties == 0
    again = render_merged(store, out, now=START + timedelta(seconds=30))
    assert not first.unchanged and again.unchanged and again.rows == first.rows == 60
    assert out.stat().st_mtime_ns == stamp
    # a deadline passes (the earliest open one, plus a minute): the sheets change, so it is written
    due = min(d for _k, _kind, d in store.open_deadlines(START + timedelta(days=400)) if d > START)
    later = render_merged(store, out, now=due + timedelta(minutes=1))
    assert not later.unchanged and out.stat().st_mtime_ns != stamp
    # a shop's save changes the store: written again
    stamp = out.stat().st_mtime_ns
    write_shop(shop, rows_for(61, seed=6), shop="S001")
    _ingest(store, shop, due + timedelta(minutes=2))
    assert not render_merged(store, out, now=due + timedelta(minutes=2)).unchanged
    assert out.stat().st_mtime_ns != stamp


def test_the_overdue_sheet_and_the_promise_rates_match_a_scan_of_every_record(tmp_path: Path) -> None:
    from collections import Counter

    from complaint_core.overdue import (
        LISTED,
        deadline_state,
        flagged,
        record_deadlines,
        record_items,
        scan,
        state_counts,
    )
    from complaint_core.store.db import View

    shop = write_shop(tmp_path / "shops" / "S001" / "S001.xlsx", rows_for(200, seed=8), shop="S001")
    store = open_store(tmp_path / "s.sqlite")
    _ingest(store, shop, START)
    for now in (START, START + timedelta(hours=5), START + timedelta(days=3), START + timedelta(days=90)):
        with store.engine.begin() as conn:
            view = View(store, conn)
            every = scan(view.live_records(), now=now)
            # 逾期 builds items only for the records with a deadline in a state it lists, from the
            # deadlines worked out once (merged/walk.py): the same lines
            found = [(r, record_deadlines(r)) for r in view.live_records()]
            listed = [(r, deadlines) for r, deadlines in found
                      if any(deadline_state(due, done, now, warn) in LISTED for _k, due, done, warn in deadlines)]
            items = [item for r, deadlines in listed for item in record_items(r, deadlines, now=now)]
            assert flagged(items) == flagged(every) and len(listed) < len(view.live_records())
            assert state_counts(view.live_records(), now=now) == Counter((i.kind, i.state) for i in every)


def test_closed_complaints_of_older_years_go_to_yearly_archives(tmp_path: Path, monkeypatch) -> None:
    from python_calamine import CalamineWorkbook

    from complaint_core.merged import archive
    from complaint_core.merged.render import render_merged

    rows = rows_for(30, seed=9)
    keys = [f.key for f in __import__("complaint_core.schema", fromlist=["FIELDS"]).FIELDS]
    i_recv, i_res, i_status = keys.index("received_at"), keys.index("resolved_at"), keys.index("status")
    for n, row in enumerate(rows):   # 10 closed in 2023, 10 closed in 2024, 10 open from 2026
        if n < 20:
            year = 2023 if n < 10 else 2024
            row[i_recv], row[i_res], row[i_status] = datetime(year, 3, 1, 9), datetime(year, 3, 2, 9), "已关闭"
        else:
            row[i_res], row[i_status] = None, "处理中"
    shop = write_shop(tmp_path / "shops" / "S001" / "S001.xlsx", rows, shop="S001")
    store = open_store(tmp_path / "s.sqlite")
    _ingest(store, shop, START)
    out = tmp_path / "汇总.xlsx"
    monkeypatch.setattr(archive, "archive_rows", lambda: 6)   # Excel's limit, scaled down: 2023 splits in two
    rep = render_merged(store, out, now=datetime(2026, 9, 20, 9, 0))

    def refs(path: Path) -> list[str]:
        grid = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("全部投诉").to_python()
        col = grid[1].index("记录标识")
        return [r[col] for r in grid[2:] if r[col]]

    parts = {p.name for p in rep.archives}
    assert parts == {"汇总-2023.xlsx", "汇总-2023-2.xlsx", "汇总-2024.xlsx", "汇总-2024-2.xlsx"}
    archived = refs(tmp_path / "汇总-2023.xlsx") + refs(tmp_path / "汇总-2023-2.xlsx")
    archived += refs(tmp_path / "汇总-2024.xlsx") + refs(tmp_path / "汇总-2024-2.xlsx")
    main = refs(out)
    assert len(main) == 10 and len(archived) == 20 and not set(main) & set(archived)   # nothing dropped
    sources = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("来源").to_python()
    assert any("2023 年已结案的投诉 10 条" in str(c) for r in sources for c in r)
    # nothing changed in those years: the archives are not written again
    stamps = {p: p.stat().st_mtime_ns for p in rep.archives}
    write_shop(shop, rows[:29] + [rows[29][:i_status] + ["已受理"] + rows[29][i_status + 1:]], shop="S001")
    _ingest(store, shop, START + timedelta(minutes=5))
    again = render_merged(store, out, now=datetime(2026, 9, 20, 9, 5))
    assert again.archives == [] and all(p.stat().st_mtime_ns == s for p, s in stamps.items())
    # one of 2024's rows changes: only 2024's archive is written again
    rows[15][keys.index("description")] = "补充说明：客户已来电确认"
    write_shop(shop, rows, shop="S001")
    _ingest(store, shop, START + timedelta(minutes=10))
    third = render_merged(store, out, now=datetime(2026, 9, 20, 9, 10))
    assert {p.name for p in third.archives} == {"汇总-2024.xlsx", "汇总-2024-2.xlsx"}


def test_rows_stored_before_the_scan_columns_are_scanned_and_filled_by_the_next_render(tmp_path: Path) -> None:
    from complaint_core.merged.render import render_merged
    from complaint_core.overdue import flagged, scan

    shop = write_shop(tmp_path / "shops" / "S001" / "S001.xlsx", rows_for(40, seed=10), shop="S001")
    store = open_store(tmp_path / "s.sqlite")
    _ingest(store, shop, START)
    with store.begin() as c:   # as an older version stored them: no done columns, no deadlines
        c.execute(t.source_rows.update().values(done_contact=None, done_feedback=None, done_followup=None,
                                                no_deadlines=None, due_contact=None, due_feedback=None,
                                                due_followup=None, anchor=None))
    rep = scan_once(store, now=START, rules=RULES)
    assert rep.full
    later = START + timedelta(days=2)
    again = scan_once(store, now=later, rules=RULES)   # incremental: the unfilled rows are decoded
    assert not again.full and again.scanned == 40
    render_merged(store, tmp_path / "汇总.xlsx", now=later)
    with store.engine.connect() as c:
        assert c.execute(select(t.source_rows.c.id).where(t.source_rows.c.no_deadlines.is_(None))).first() is None
    with store.engine.begin() as conn:
        from complaint_core.store.db import View

        view = View(store, conn)
        assert len(flagged(scan(view.live_records(), now=later))) > 0
    assert scan_once(store, now=later + timedelta(minutes=1), rules=RULES).scanned < 40
