"""Yearly archives written a batch of complaints at a time (issue 17): a chain with years of
history keeps the merge's memory flat, the rows come out in the walk's order whatever the
batch, and a year at Excel's row limit is split, never cut."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from python_calamine import CalamineWorkbook

from bench.data import rows_for, write_shop
from complaint_core.merged import archive, xlsx
from complaint_core.merged.pieces import PieceCache
from complaint_core.merged.render import render_merged
from complaint_core.reader import read_workbook
from complaint_core.schema import FIELDS
from complaint_core.store import open_store
from complaint_core.store.ingest import ingest_table

NOW = datetime(2026, 9, 20, 9, 0)
KEYS = [f.key for f in FIELDS]


def _chain(tmp_path: Path, closed: int, open_: int = 2) -> tuple[object, Path]:
    """Two shops whose ``closed`` complaints each closed in 2023 (received on different days,
    so the walk's order is by shop, then 受理时间), and ``open_`` still open in 2026."""
    store = open_store(tmp_path / "s.sqlite")
    for s, shop in enumerate(("S001", "S002")):
        rows = rows_for(closed + open_, shop=shop, seed=20 + s)
        for n, row in enumerate(rows):
            if n < closed:
                received = datetime(2023, 1 + n % 12, 1 + (7 * n) % 28, 9)
                row[KEYS.index("received_at")] = received
                row[KEYS.index("resolved_at")] = received.replace(hour=18)
                row[KEYS.index("status")] = "已关闭"
            else:
                row[KEYS.index("received_at")] = datetime(2026, 9, 1, 9)
                row[KEYS.index("resolved_at")] = None
                row[KEYS.index("status")] = "处理中"
        path = write_shop(tmp_path / "shops" / f"{shop}.xlsx", rows, shop=shop)
        st = path.stat()
        ingest_table(store, path, read_workbook(path), [], file_hash=str(st.st_mtime_ns), size=st.st_size,
                     mtime=st.st_mtime, now=NOW)
    return store, tmp_path / "汇总.xlsx"


def _grid(path: Path) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name("全部投诉").to_python()


def _data(path: Path) -> list[list]:
    """An archive's data rows (under its note and header)."""
    return [r for r in _grid(path)[2:] if any(c != "" for c in r)]


def test_an_archive_from_the_shops_pieces_is_the_one_decoded_from_the_store_in_batches(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    store, out = _chain(tmp_path, closed=11)
    asked: list[int] = []
    records_for = type(store).records_for

    def counted(self, keys, conn=None):
        asked.append(len(keys))
        return records_for(self, keys, conn)

    monkeypatch.setattr(type(store), "records_for", counted)
    # the rows the shops' pieces encoded: nothing of the year is decoded again
    render_merged(store, out, now=NOW)
    assert asked == []
    whole = _data(out.with_name("汇总-2023.xlsx"))
    assert len(whole) == 22
    # the walk's order: shop, then 受理时间
    head = _grid(out.with_name("汇总-2023.xlsx"))[1]
    shop, recv = head.index("门店"), head.index("受理时间")
    assert [(r[shop], r[recv]) for r in whole] == sorted((r[shop], r[recv]) for r in whole)

    # the shops' rows not kept (a cache cleared): decoded from the store, 3 at a time, the same
    monkeypatch.setattr(PieceCache, "archived", lambda self, shop, token: None)
    monkeypatch.setattr(archive, "ARCHIVE_BATCH", 3)
    other = tmp_path / "另一份.xlsx"   # the same store written to another workbook, with its archives
    render_merged(store, other, now=NOW)
    assert asked and max(asked) <= 3
    assert _data(other.with_name("另一份-2023.xlsx")) == whole


def test_a_year_at_excels_row_limit_is_split_and_no_row_is_cut(tmp_path: Path, monkeypatch) -> None:
    # Excel's limit scaled down to 9 rows: under an archive's note and header, the writer holds 6
    monkeypatch.setattr(xlsx, "EXCEL_MAX_ROWS", 9)
    assert archive.archive_rows() == 6
    store, out = _chain(tmp_path, closed=6, open_=1)   # 12 closed in 2023: exactly two full parts
    rep = render_merged(store, out, now=NOW)
    assert {p.name for p in rep.archives} == {"汇总-2023.xlsx", "汇总-2023-2.xlsx"}
    first, second = _data(out.with_name("汇总-2023.xlsx")), _data(out.with_name("汇总-2023-2.xlsx"))
    assert len(first) == len(second) == 6
    text = " ".join(str(c) for r in first + second for c in r)
    assert "超出 Excel" not in text   # no part says rows were left out


def test_an_archive_shows_the_managers_cells(tmp_path: Path) -> None:
    from complaint_core.store.codec import ALL_SHEET

    store, out = _chain(tmp_path, closed=3)
    render_merged(store, out, now=NOW)
    grid = _grid(out.with_name("汇总-2023.xlsx"))
    ref = grid[1].index("记录标识")
    target = grid[2][ref]
    store.save_manager_edits(ALL_SHEET, {(target,): {"manager_approval": "已复核，结案"}}, now=NOW)
    render_merged(store, out, now=NOW)
    again = _grid(out.with_name("汇总-2023.xlsx"))
    row = next(r for r in again[2:] if r[ref] == target)
    assert "已复核，结案" in row


def test_a_deleted_archive_is_written_again_by_the_next_write_though_nothing_changed(tmp_path: Path) -> None:
    store, out = _chain(tmp_path, closed=4)
    render_merged(store, out, now=NOW)
    archived = out.with_name("汇总-2023.xlsx")
    rows = _data(archived)
    stamp = out.stat().st_mtime_ns
    # nothing changed: the workbook and its archive stay as they are
    again = render_merged(store, out, now=NOW)
    assert again.unchanged and again.archives == [] and out.stat().st_mtime_ns == stamp
    archived.unlink()   # a clean-up took the archive away
    third = render_merged(store, out, now=NOW)
    assert archived in third.archives and _data(archived) == rows
