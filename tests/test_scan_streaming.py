"""A full overdue scan goes through the store a shop at a time (issue 17: a million stored
complaints once took 7.6 GiB held at once), and gives exactly what a scan of every record held
at once gives: penalty events, alerts, the day's digests in the same words and order, the
figures. A scan stopped half-way is done again in full and stores nothing twice."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import scheduler.api as api
from bench.data import rows_for, write_shop
from complaint_core.overdue import flagged, scan
from complaint_core.penalties import events_for
from complaint_core.reader import read_workbook
from complaint_core.rules_book import Person, Rules
from complaint_core.store import Store, open_store
from complaint_core.store.ingest import ingest_table
from complaint_core.store.sched_tables import outbox, penalty_events
from scheduler.escalate import alerts
from scheduler.mail import digests
from scheduler.robots import Robot, digest_posts

NOW = datetime(2026, 11, 20, 9, 30)
SHOPS = {"S001": 90, "S002": 40, "S003": 25}
ROBOTS = (Robot("S001群", "wecom", "X1", "", ("S001",)), Robot("主管群", "feishu", "X3", "", ()))
CHUNK = 16   # complaints a big shop is decoded by (scheduler.api.SCAN_CHUNK, made small here)


def _chain(tmp_path: Path, name: str) -> Store:
    store = open_store(tmp_path / f"{name}.sqlite")
    for n, (shop, count) in enumerate(SHOPS.items()):
        path = write_shop(tmp_path / "shops" / shop / f"{shop}.xlsx", rows_for(count, shop=shop, seed=n + 7),
                          shop=shop)
        st = path.stat()
        ingest_table(store, path, read_workbook(path), [], file_hash=str(st.st_mtime_ns), size=st.st_size,
                     mtime=st.st_mtime, now=NOW)
    return store


def _rules(store: Store) -> Rules:
    # everyone the shops name, with an address (digests) and a head (managers' mails, alerts)
    people = sorted({str(r.get("responsible_person") or r.get("received_by") or "")
                     for r in store.snapshot()[0]} - {""})
    staff = [Person(p, "销售部", "王芳", f"p{i}@example.cn", mobile=f"1380013{i:04d}") for i, p in enumerate(people)]
    return Rules(staff=(*staff, Person("王芳", "门店管理", "", "wf@example.cn", mobile="13900139000")))


def _stored(store: Store) -> tuple[set[tuple[str, float]], dict[str, str]]:
    with store.engine.connect() as c:
        events = set(c.execute(select(penalty_events.c.event_id, penalty_events.c.amount)).all())
        queued = {k: text for k, text in c.execute(select(outbox.c.dedupe_key, outbox.c.body_text))}
    return events, queued


def _whole(store: Store, rules: Rules) -> tuple[set[tuple[str, float]], dict[str, str], dict[str, Any]]:
    """What a scan of every live record held at once gives (the scan as it was written first)."""
    recs = [r for r in store.snapshot()[0] if not r["deleted"]]
    items = scan(recs, now=NOW)
    evs = events_for(items, {r["record_id"]: r for r in recs}, rules.penalties, rules.heads(),
                     tiers=rules.tiers, bases=rules.bases())
    states = Counter(i.state for i in items)
    figures = {"投诉": len(recs), "已逾期": states["overdue"], "即将到期": states["due_soon"]}
    mails, posts = alerts(recs, rules, ROBOTS, set())
    mails += digests(items, rules, day=NOW.date(), figures=figures)
    posts += digest_posts(items, rules, ROBOTS, day=NOW.date(), figures=figures)
    queued = {m.dedupe_key: m.text for m in mails} | {p.dedupe_key: p.text for p in posts}
    report = {"records": len(recs), "flagged": len(flagged(items)), "overdue": states["overdue"],
              "states": dict(states), "new_penalties": len({e.event_id for e in evs})}
    return {(e.event_id, e.amount) for e in evs}, queued, report


def test_a_full_scan_goes_shop_by_shop_and_gives_what_the_whole_store_gives(tmp_path: Path, monkeypatch) -> None:
    store = _chain(tmp_path, "chain")
    rules = _rules(store)
    events, queued, report = _whole(store, rules)
    assert events and len(queued) > 10 and report["states"].get("overdue")   # the data has all of these

    seen: list[int] = []
    real_scan = api.scan

    def spied(records: list[dict[str, Any]], **kw: Any) -> Any:
        seen.append(len(records))
        return real_scan(records, **kw)

    def whole(*_a: Any, **_k: Any) -> None:
        raise AssertionError("a full scan read the whole store at once")

    monkeypatch.setattr(api, "SCAN_CHUNK", CHUNK)
    monkeypatch.setattr(api, "scan", spied)
    monkeypatch.setattr(Store, "snapshot", whole)
    rep = api.scan_once(store, now=NOW, rules=rules, robots=ROBOTS)
    monkeypatch.undo()

    assert rep.full and max(seen) <= CHUNK and sum(seen) == rep.records == report["records"]
    assert len(seen) >= sum(-(-n // CHUNK) for n in SHOPS.values()) - 1   # S001 in several parts
    assert (rep.flagged, rep.overdue, rep.states, rep.new_penalties) == (
        report["flagged"], report["overdue"], report["states"], report["new_penalties"])
    got_events, got_queued = _stored(store)
    assert got_events == events
    # the same mails and posts, each in the same words: the digests list the items in the order
    # a scan of the whole store gives them
    assert got_queued == queued
    assert rep.queued_mails + rep.queued_posts == len(queued)


# the walk it gave up is collected after its connection closed: no error may come of it
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_full_scan_stopped_half_way_is_done_again_and_nothing_is_doubled(tmp_path: Path, monkeypatch) -> None:
    store, twin = _chain(tmp_path, "stopped"), _chain(tmp_path, "whole")
    rules = _rules(store)
    ref = api.scan_once(twin, now=NOW, rules=rules, robots=ROBOTS)

    calls = 0
    real_add = api._Found.add

    def dies(self: Any, conn: Any, live: list[dict[str, Any]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt("the PC was switched off")
        real_add(self, conn, live)

    monkeypatch.setattr(api, "SCAN_CHUNK", CHUNK)
    monkeypatch.setattr(api._Found, "add", dies)
    with pytest.raises(KeyboardInterrupt):
        api.scan_once(store, now=NOW, rules=rules, robots=ROBOTS)
    monkeypatch.setattr(api._Found, "add", real_add)
    partial, _queued = _stored(store)
    assert 0 < len(partial) < len(_stored(twin)[0])   # the first shops' events were kept
    with store.engine.connect() as c:
        assert store._named(api.SCAN_STATE, c) is None   # so the next scan is a full one again

    again = api.scan_once(store, now=NOW, rules=rules, robots=ROBOTS)
    assert again.full and again.new_penalties == ref.new_penalties - len(partial)
    assert _stored(store) == _stored(twin)
    # and from then on it is as if it had never stopped: a quiet rescan finds nothing
    quiet = api.scan_once(store, now=NOW, rules=rules, robots=ROBOTS)
    assert (quiet.full, quiet.scanned, quiet.new_penalties, quiet.queued_mails, quiet.queued_posts) == (
        False, 0, 0, 0, 0)


def test_feedback_given_with_one_moment_zoned_and_one_not() -> None:
    # found by tests/test_codec.py's generated rows: a 反馈时间 without a zone and a 解决时间 with
    # one made storing the row fail (Python cannot order the two); the shop's clock decides
    from datetime import timedelta, timezone

    from complaint_core.overdue import feedback_given

    zoned = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    assert feedback_given({"feedback_at": datetime(2026, 3, 2, 10, 0), "resolved_at": zoned}) is zoned
    assert feedback_given({"feedback_at": datetime(2026, 3, 2, 8, 0), "resolved_at": zoned}) == datetime(2026, 3, 2, 8, 0)
