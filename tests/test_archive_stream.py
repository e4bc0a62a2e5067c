"""Yearly archives written a batch of complaints at a time (issue 17): a chain with years of
history keeps the merge's memory flat, the rows come out in the walk's order whatever the
batch, and a year at Excel's row limit is split, never cut."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bench.data import rows_for, write_shop
from complaint_core.merged import archive, xlsx
from complaint_core.merged.pieces import PieceCache
from complaint_core.merged.render import render_merged
from complaint_core.reader import read_workbook
from complaint_core.schema import FIELDS
from complaint_core.store import open_store
from complaint_core.store.ingest import ingest_table
from tests.support.merged import grid

NOW = datetime(2026, 9, 20, 9, 0)
KEYS = [f.key for f in FIELDS]


def _rows(shop: str, seed: int, closed: int, open_: int) -> list[list]:
    """``closed`` complaints closed in 2023 (received on different days, so the walk's order is
    by shop, then 受理时间), and ``open_`` still open in 2026."""
    rows = rows_for(closed + open_, shop=shop, seed=seed)
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
    return rows


def _chain(tmp_path: Path, closed: int, open_: int = 2) -> tuple[object, Path]:
    """Two shops, each with ``_rows``."""
    store = open_store(tmp_path / "s.sqlite")
    for s, shop in enumerate(("S001", "S002")):
        _save(store, write_shop(tmp_path / "shops" / f"{shop}.xlsx", _rows(shop, 20 + s, closed, open_), shop=shop))
    return store, tmp_path / "汇总.xlsx"


def _save(store, path: Path) -> None:
    st = path.stat()
    ingest_table(store, path, read_workbook(path), [], file_hash=str(st.st_mtime_ns), size=st.st_size,
                 mtime=st.st_mtime, now=NOW)


def _grid(path: Path) -> list[list]:
    return grid(path, "全部投诉")


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
    sheet = _grid(out.with_name("汇总-2023.xlsx"))
    ref = sheet[1].index("记录标识")
    target = sheet[2][ref]
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


def test_an_archive_whose_complaints_were_all_reopened_is_removed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(archive, "archive_rows", lambda: 5)   # Excel's limit, scaled down
    store, out = _chain(tmp_path, closed=4)                    # 8 closed in 2023: two parts
    render_merged(store, out, now=NOW)
    first, second = out.with_name("汇总-2023.xlsx"), out.with_name("汇总-2023-2.xlsx")
    assert first.is_file() and second.is_file()
    # S002 reopens its four: 2023 keeps S001's four, in one part; the second part goes
    for shop, seed in (("S002", 21), ("S001", 20)):
        rows = _rows(shop, seed, 4, 2)
        for row in rows:   # open again: no 解决时间, in hand, and valid (不成立 closes a complaint)
            row[KEYS.index("resolved_at")], row[KEYS.index("status")] = None, "处理中"
            row[KEYS.index("validity")] = "成立"
        _save(store, write_shop(tmp_path / "shops" / f"{shop}.xlsx", rows, shop=shop))
        again = render_merged(store, out, now=NOW)
        if shop == "S002":
            assert first in again.archives and not second.exists() and len(_data(first)) == 4
    # S001 reopened its four as well: no complaint closed in 2023 is left, nor its archive
    assert not first.exists() and not second.exists()
    head = _grid(out)[1]
    assert len([r for r in _grid(out)[2:] if r[head.index("记录标识")]]) == 12   # every complaint here


def test_a_new_store_adopts_the_managers_cells_shown_in_the_archives(tmp_path: Path) -> None:
    from complaint_core.store.codec import ALL_SHEET

    store, out = _chain(tmp_path, closed=3)
    render_merged(store, out, now=NOW)
    archived = out.with_name("汇总-2023.xlsx")
    sheet = _grid(archived)
    ref = sheet[1].index("记录标识")
    target = sheet[2][ref]
    # typed into the merged workbook while the complaint was there; in the store and the archive
    store.save_manager_edits(ALL_SHEET, {(target,): {"manager_approval": "按三倍赔偿，已结案"}}, now=NOW)
    render_merged(store, out, now=NOW)
    assert "按三倍赔偿，已结案" in str(_grid(archived))
    # the store is lost: a new one reads the shops again and adopts the workbook, archives too
    store.engine.dispose()
    (tmp_path / "s.sqlite").unlink()
    fresh = open_store(tmp_path / "new.sqlite")
    for shop in ("S001", "S002"):
        _save(fresh, tmp_path / "shops" / f"{shop}.xlsx")
    render_merged(fresh, out, now=NOW)
    assert fresh.manager_edits(ALL_SHEET)[(target,)]["manager_approval"] == "按三倍赔偿，已结案"
    row = next(r for r in _grid(archived)[2:] if r[ref] == target)
    assert "按三倍赔偿，已结案" in row


def test_a_years_keys_wait_in_a_file_and_come_back_in_any_range_and_batch(monkeypatch) -> None:
    # the chain's keys of a closed year are not held through the render: they go to a file as
    # each shop's come (the limit scaled down so that a real file is used), and come back for
    # any part of an archive, in the walk's order, a shop's at most at a time
    monkeypatch.setattr(archive, "_KEYS_IN_MEMORY", 64)
    year = archive.Year(2023)
    shops = [[f"S{s}-{n}" for n in range(size)] for s, size in enumerate((7, 0, 1, 12, 5))]
    for s, keys in enumerate(shops):
        year.extend(keys, f"digest{s}", f"S{s}", f"token{s}")
    every = [k for keys in shops for k in keys]
    assert year.count == len(every) == 25
    assert year._spool is not None and year._spool._rolled   # noqa: SLF001 - on disk, not in memory
    for start in range(0, 26):
        for stop in range(start, 27):
            got = list(year.keys(start, stop))
            assert [k for keys in got for k in keys] == every[start:stop]
            assert all(len(keys) <= 12 for keys in got)
            for size in (1, 3, 5, 25):
                batches = list(archive._batches(year.keys(start, stop), size))   # noqa: SLF001
                assert [k for b in batches for k in b] == every[start:stop]
                assert all(len(b) == size for b in batches[:-1]) and all(0 < len(b) <= size for b in batches)
    year.close()
    assert year._spool is None   # noqa: SLF001
