"""处罚 kept per shop between writes (issue 17): after a scan that added one shop's lines, or a
manager's decision on one line, only that shop's part is made again, and the workbook is, cell
for cell, what a render with nothing kept writes. Real store, real scans, real workbooks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bench.data import rows_for, write_shop
from complaint_core.merged.penalty_parts import decisions
from complaint_core.merged.render import render_merged
from complaint_core.store import open_store
from complaint_core.store.db import Store
from scheduler.api import scan_once
from sync.api import merge_into
from tests.test_pieces import SHOPS, T0, _grids, _same, _touch
from tests.test_pieces import chain as chain  # noqa: F401 - the fixture `scanned` builds on


@pytest.fixture
def scanned(chain: tuple[Store, Path, Path]) -> tuple[Store, Path, Path]:
    """test_pieces's chain of four shops, scanned: every shop has penalty lines, each its part."""
    store, _folder, out = chain
    assert scan_once(store, now=T0).new_penalties > 0
    rep = render_merged(store, out, now=T0)
    assert rep.penalties_made == len(SHOPS)
    return chain


def _lines(out: Path) -> list[list[object]]:
    """处罚's data rows (after its note and header)."""
    return [r for r in _grids(out)["处罚"][2:] if r and r[0]]


def test_lines_are_listed_by_month_then_shop_then_day_and_none_is_left_out(scanned) -> None:
    store, _folder, out = scanned
    events = {e.event_id: e for e in store.penalty_events()}
    listed = [events[str(r[0])] for r in _lines(out)]
    assert {e.shop for e in listed} == set(SHOPS)
    assert len(listed) == len(events)   # the bench's rules give no loss line the rules later drop
    order = [(e.month, e.shop, e.day, e.event_id) for e in listed]
    assert order == sorted(order)


def test_a_write_with_nothing_new_keeps_every_part(scanned, tmp_path: Path) -> None:
    store, _folder, out = scanned
    _touch(out)   # a manager saved it: read back and written again
    rep = render_merged(store, out, now=T0 + timedelta(minutes=1))
    assert (rep.unchanged, rep.penalties_made) == (False, 0)
    _same(out, store, tmp_path, T0 + timedelta(minutes=1))


def test_a_scan_after_one_shops_save_makes_that_shops_part_only(scanned, tmp_path: Path) -> None:
    store, folder, out = scanned
    before = {str(r[0]) for r in _lines(out)}
    write_shop(folder / "S03" / "S03.xlsx", rows_for(36, shop="S03", seed=91), shop="S03")
    later = T0 + timedelta(hours=2)
    merge_into(store, [folder], out, now=later)
    assert scan_once(store, now=later).new_penalties > 0
    rep = render_merged(store, out, now=later)
    assert rep.penalties_made == 1
    new = {e.event_id for e in store.penalty_events() if e.event_id not in before}
    assert new and {e.shop for e in store.penalty_events() if e.event_id in new} == {"S03"}
    assert new <= {str(r[0]) for r in _lines(out)}
    _same(out, store, tmp_path, later)


def test_a_managers_decision_moves_the_totals_and_makes_its_shops_part_again(scanned, tmp_path: Path) -> None:
    store, _folder, out = scanned
    first = next(r for r in _lines(out) if r[4])   # a line with a person to fine
    store.save_manager_edits("处罚", {(str(first[0]),): {"confirm": "确认"}}, now=T0)
    rep = render_merged(store, out, now=T0 + timedelta(minutes=2))
    assert rep.penalties_made == 1
    line = next(r for r in _lines(out) if r[0] == first[0])
    assert line[-2:] == ["已确认", "确认"]
    summary = _grids(out)["汇总"]
    head = next(i for i, r in enumerate(summary) if r and r[0] == "处罚（按人）")
    owed = {r[0]: r[1] for r in summary[head + 2:] if r and r[0]}
    assert owed[first[4]] >= first[6] > 0
    _same(out, store, tmp_path, T0 + timedelta(minutes=2))


def test_a_cache_that_is_lost_or_torn_is_made_again_with_the_same_content(scanned, tmp_path: Path) -> None:
    store, _folder, out = scanned
    parts = sorted(tmp_path.glob(".state.sqlite.pieces/*/*.penalties"))
    assert len(parts) == len(SHOPS)
    parts[0].write_bytes(b"torn")
    parts[1].unlink()
    _touch(out)
    rep = render_merged(store, out, now=T0 + timedelta(minutes=3))
    assert rep.penalties_made == 2
    _same(out, store, tmp_path, T0 + timedelta(minutes=3))


def test_which_loss_lines_are_listed_is_part_of_what_a_part_was_made_with() -> None:
    ids, loss = ["a", "b", "c"], ["c"]
    base = decisions(ids, loss, {}, set())
    assert decisions(ids, loss, {}, {"c"}) != base                        # the rules give it again
    assert decisions(ids, loss, {("b",): {"confirm": "免除"}}, set()) != base
    assert decisions(ids, loss, {("z",): {"confirm": "确认"}}, set()) == base   # another shop's line


def test_lines_without_a_shop_from_an_older_version_are_listed_under_their_own_part(tmp_path: Path) -> None:
    """An older version stored some lines without their shop (NULL): they are one part, "", listed
    with the rest, and an empty shop and a missing one are the same part."""
    from datetime import date

    from sqlalchemy import insert

    from complaint_core.store.sched_tables import penalty_events

    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    line = dict(record_id="r", complaint_id="X-1", rule_id="P1", kind="late", person="张强", dept="售后部",
                head="李经理", amount=20.0, why="超时", first_seen=T0)
    with store.begin() as conn:
        conn.execute(insert(penalty_events), [
            {**line, "event_id": "e1", "shop": None, "day": date(2026, 3, 2)},
            {**line, "event_id": "e2", "shop": "", "day": date(2026, 3, 1)},
            {**line, "event_id": "e3", "shop": "A", "day": date(2026, 2, 27)}])
    assert store.penalty_marks() == {"": (2, "e1", "e2"), "A": (1, "e3", "e3")}
    assert [(s, [e.event_id for e in evs]) for s, evs in store.shop_penalty_events(["", "A"])] == [
        ("", ["e2", "e1"]), ("A", ["e3"])]
    out = tmp_path / "汇总.xlsx"
    rep = render_merged(store, out, now=T0)
    assert rep.penalties_made == 2
    assert [r[0] for r in _lines(out)] == ["e3", "e2", "e1"]   # February, then March by shop and day
    _touch(out)
    assert render_merged(store, out, now=T0 + timedelta(minutes=1)).penalties_made == 0
