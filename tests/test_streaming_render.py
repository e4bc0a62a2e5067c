"""The render walks the store shop by shop (issue 17): it never asks for every complaint at
once, and what it counts on the way equals what a pass over every complaint gives."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from bench.data import rows_for, write_shop
from complaint_core.merged import report
from complaint_core.merged.render import build_sheets, render_merged
from complaint_core.overdue import flagged, scan
from complaint_core.reader import read_workbook
from complaint_core.store import open_store
from complaint_core.store.db import Store, View
from complaint_core.store.ingest import ingest_table

NOW = datetime(2026, 9, 20, 9, 0)
# code-point order: "A" < "A-1" < "B" < "甲"; a record key "A|…" sorts after "A-1|…", so a walk
# that followed the keys instead of the shops would put shop A's rows in the wrong place
SHOPS = ("甲", "B", "A-1", "A")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("shops")
    st = open_store(folder / "s.sqlite")
    for n, shop in enumerate(SHOPS):
        path = write_shop(folder / shop / f"{shop}.xlsx", rows_for(40, shop=shop, seed=n), shop=shop)
        stat = path.stat()
        ingest_table(st, path, read_workbook(path), [], file_hash=str(stat.st_mtime_ns), size=stat.st_size,
                     mtime=stat.st_mtime, now=NOW - timedelta(days=1))
    return st


def _grid(path: Path, sheet: str) -> list[list[object]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def _shown(rows: list[list[object]]) -> list[list[object]]:
    """Rows as the workbook shows them: an empty text is an empty cell."""
    return [[None if v == "" else v for v in row] for row in rows]


def test_the_walk_counts_what_a_pass_over_every_complaint_counts(store: Store) -> None:
    sheets = {s.name: s for s in build_sheets(store, NOW)}
    with store.engine.begin() as conn:
        # the oracle: every complaint at once, as the render did before it walked shop by shop
        view = View(store, conn)
        records = view.current_records()
        acc = report.Summary(NOW)
        acc.add(view.live_records())
        whole = acc.sheet([])
        overdue = [report.overdue_row(i) for i in flagged(scan(view.live_records(), now=NOW))]
        cases = sorted((c for r in view.live_records() if (c := report.case_of(r, NOW)) is not None),
                       key=lambda c: c[0])
    assert [(b.title, b.rows) for b in sheets["汇总"].blocks] == [(b.title, b.rows) for b in whole.blocks]
    assert sheets["逾期"].rows == _shown(overdue) and overdue
    assert sheets["案例手册"].rows == _shown([row for _key, row in cases]) and cases
    refs = [row[-1] for row in sheets["全部投诉"].rows]
    in_order = sorted(records, key=lambda r: (r["shop"], str(r["received_at"] or ""), r["record_id"]))
    assert refs == [r["record_ref"] for r in in_order] == [r["record_ref"] for r in records]
    shops = [r["shop"] for r in records]
    assert list(dict.fromkeys(shops)) == sorted(SHOPS)   # shops in code-point order, each in one run


def test_a_render_never_holds_every_complaint(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with store.engine.begin() as conn:
        expected = [r["record_ref"] for r in View(store, conn).current_records()]

    def refuse(*_args: object) -> None:
        raise AssertionError("the render asked for every complaint at once")

    for name in ("current_records", "live_records", "conflicts"):
        monkeypatch.setattr(View, name, refuse)
    monkeypatch.setattr(Store, "snapshot", refuse)
    out = tmp_path / "汇总.xlsx"
    rep = render_merged(store, out, now=NOW)
    grid = _grid(out, "全部投诉")
    col = grid[1].index("记录标识")
    assert [row[col] for row in grid[2:]] == expected and rep.rows == len(expected) == 160


def test_a_big_shop_is_decoded_a_chunk_at_a_time(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from complaint_core.store import db

    whole = build_sheets(store, NOW)
    monkeypatch.setattr(db, "SHOP_CHUNK", 7)
    chunks = list(store.shop_records("A"))
    assert len(chunks) == 6 and all(len(records) <= 7 for records, _c in chunks)
    with store.engine.begin() as conn:
        expected = [r["record_ref"] for r in View(store, conn).current_records() if r["shop"] == "A"]
    assert [r["record_ref"] for records, _c in chunks for r in records] == expected
    # typed dates (2026年13月40日) and empty ones sort as the sheet sorts them, chunk or not
    chunked = build_sheets(store, NOW)
    for a, b in zip(whole, chunked, strict=True):
        assert (a.name, a.rows, [(x.title, x.rows) for x in a.blocks]) == (b.name, b.rows, [(x.title, x.rows) for x in b.blocks])


def test_a_big_shops_chunks_are_read_inside_the_renders_transaction_and_leave_nothing(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite a big shop's order goes into a temporary table of the connection's own, inside
    the render's read of the store; it is gone once the shop is read, or left half-read."""
    from sqlalchemy import text

    from complaint_core.store import db

    monkeypatch.setattr(db, "SHOP_CHUNK", 7)
    tables = text("SELECT name FROM sqlite_temp_master WHERE type = 'table'")
    with store.engine.begin() as conn:
        view = View(store, conn)
        for shop in SHOPS:
            chunks = list(view.shop_records(shop))
            assert len(chunks) > 1
            expected = [r["record_ref"] for r in view.current_records() if r["shop"] == shop]
            assert [r["record_ref"] for records, _c in chunks for r in records] == expected
        part = view.shop_records("B")
        next(part)
        assert len(conn.execute(tables).all()) == 1
        part.close()   # a render that failed half-way through a shop
        assert conn.execute(tables).all() == []


class _Traced(dict):   # a record that can be watched for being freed (a plain dict cannot)
    pass


def test_a_chunk_is_let_go_of_before_the_next_is_read(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big shop's piece holds one chunk of decoded complaints at a time (issue 17: a chain of
    3,000-row shops peaked higher than one of 1,000-row shops): the records of a chunk are freed
    before the next chunk is read, and the stored rows of a chunk as its records are made."""
    import gc
    import weakref

    from complaint_core.merged.readback import RENDERED_COLUMNS, rendered_sheet
    from complaint_core.merged.report import (
        CASE_COLUMNS,
        OVERDUE_COLUMNS,
        case_book_sheet,
        overdue_sheet,
    )
    from complaint_core.merged.sheets import FINDING_COLUMNS, all_columns, all_sheet, findings_sheet
    from complaint_core.merged.walk import Context, Sinks, make_piece, typed_cells
    from complaint_core.merged.xlsx import Book, first_data_row
    from complaint_core.store import db

    monkeypatch.setattr(db, "SHOP_CHUNK", 7)
    book = Book()
    sinks = Sinks(all_rows=book.spool(all_columns(), first_data_row(all_sheet())),
                  overdue=book.spool(OVERDUE_COLUMNS, first_data_row(overdue_sheet([], NOW))),
                  rendered=book.spool(RENDERED_COLUMNS, first_data_row(rendered_sheet([]))),
                  cases=book.spool(CASE_COLUMNS, first_data_row(case_book_sheet([]))),
                  findings=book.spool(FINDING_COLUMNS, first_data_row(findings_sheet([]))))
    alive_at_next: list[int] = []
    left: list[int] = []   # stored rows of a chunk still listed once its records are made
    real_batch, real_drained = db._shop_batch, db.drained
    given: list[list[object]] = []

    def drained(rows):
        given.append(rows)
        return real_drained(rows)

    def watched_batch(rows, settings):
        got = real_batch(rows, settings)
        left.extend(len(g) for g in given)
        given.clear()
        return got

    monkeypatch.setattr(db, "drained", drained)
    monkeypatch.setattr(db, "_shop_batch", watched_batch)
    with store.engine.begin() as conn:
        view = View(store, conn)
        edits = view.manager_edits("全部投诉")
        ctx = Context(NOW, "ns", edits, typed_cells(edits), view.rules(), NOW.year - 1)

        def chunks():
            refs: list[weakref.ref] = []
            for records, conflicts in store.shop_records("A", conn):
                gc.collect()
                alive_at_next.append(sum(r() is not None for r in refs))
                traced = [_Traced(r) for r in records]
                del records
                refs = [weakref.ref(r) for r in traced]
                yield traced, conflicts
                del traced
            gc.collect()
            alive_at_next.append(sum(r() is not None for r in refs))

        piece = make_piece(chunks(), "mark", ctx, sinks.codecs())
    assert piece.rows == 40 and len(alive_at_next) == 7
    assert alive_at_next == [0] * 7          # no chunk's records outlive it into the next read
    assert left == [0] * 6   # each chunk's stored rows were taken out as they were used


# 受理时间 as a shop's stored JSON may hold it: a moment, a typed date that is no moment, an
# escaped text, a number, true, nothing, and a row whose JSON SQLite refuses (a NaN elsewhere)
_RECEIVED_JSON = ['"2026-09-03T08:00:00"', '"2026年13月40日"', '"2026-09-03 08:00:00"', '"\\"quoted\\" \\u4e2d"',
                  "20260903", "1e5", "true", "null", None, '"2026-09-02T23:59:59.5"']


@pytest.mark.parametrize("refused", [False, True])
def test_a_big_shops_order_is_the_order_of_its_records(tmp_path: Path, refused: bool) -> None:
    """Where a big shop's chunks begin and end: SQLite takes each complaint's 受理时间 out of its
    winning row's JSON (not sending the JSON), or, where its JSON reader refuses a row, every
    row is decoded here; either way the order is the one its records sort in."""
    from sqlalchemy import insert

    from complaint_core.store import db
    from complaint_core.store import tables as t

    store = open_store(tmp_path / "s.sqlite")
    rows = []
    for n in range(40):
        value = _RECEIVED_JSON[n % len(_RECEIVED_JSON)]
        extra = '"amount": NaN, ' if refused and n == 17 else ""
        data = "{" + extra + ("" if value is None else f'"received_at": {value}, ') + f'"complaint_id": "C{n % 30}"}}'
        # ids C0-C9 are in two files: the newer update wins, with its own 受理时间
        path, upd = ("b.xlsx", datetime(2026, 9, 5)) if n >= 30 else ("a.xlsx", datetime(2026, 9, 4))
        rows.append(dict(source_path=path, sheet="投诉登记", row=n + 2, shop="S1", complaint_id=f"C{n % 30}",
                         record_key=f"S1\x1fC{n % 30}", content_hash=f"h{n}", data=data, updated_at=upd, version=1,
                         first_seen=NOW, last_seen=NOW, deleted=False, anchor=None))
    with store.begin() as c:
        c.execute(insert(t.source_rows), rows)
    whole = [r for records, _c in store.shop_records("S1", size=1000) for r in records]
    want = sorted((str(r["received_at"] or ""), r["record_id"]) for r in whole)
    assert len(want) == 30 and len({text for text, _k in want}) > 6
    with store.engine.connect() as c:
        assert db._shop_order(c, "S1") == want
        if not refused:   # SQLite's own reading, and the one the other databases use, agree
            assert db._shop_order_sqlite(c, "S1") == want
    chunked = [r["record_ref"] for records, _c in store.shop_records("S1", size=7) for r in records]
    assert chunked == [r["record_ref"] for r in whole]


_KILLED_MID_WRITE = r"""
import os, signal, sys
from complaint_core.merged.pieces import ChainTally
from complaint_core.merged.report import Repeats
from types import SimpleNamespace

# 20 MB of 案例手册 rows: past SQLite's 2 MB page cache, so its temporary file is written
cases = [(("类别", n % 5, float(n)), ("<row>" + "顾客说太慢了" * 800 + "</row>").encode()) for n in range(2_000)]
tally = ChainTally(None)
for shop in ("S01", "S02"):
    counts = Repeats(str)
    counts.counts.update({f"{shop}客户{i}": 1 for i in range(50_000)})
    tally.sync(shop, SimpleNamespace(token=shop, summary=SimpleNamespace(customers=counts, subjects=Repeats(str)),
                                     cases=cases if shop == "S01" else []))
held = []
for fd in os.listdir("/proc/self/fd"):
    try:
        held.append(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:   # the listing's own descriptor, closed already
        pass
print("\n".join(held), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_write_killed_midway_leaves_nothing_in_the_temp_folder(tmp_path: Path) -> None:
    # a chain tally without a cache folder (its counts and 案例手册's rows) keeps them in temporary
    # SQLite files: files the system deletes, so a daemon killed mid-write (power cut, task
    # manager) leaves no megabytes behind in the temp folder, write after write
    import os
    import signal
    import subprocess
    import sys

    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "SQLITE_TMPDIR": str(temp)}
    done = subprocess.run([sys.executable, "-c", _KILLED_MID_WRITE], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr
    spilled = [line for line in done.stdout.splitlines() if line.startswith(str(temp))]
    assert spilled and all(line.endswith("(deleted)") for line in spilled)   # written there, never named
    assert list(temp.iterdir()) == []
