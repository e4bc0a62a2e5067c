"""A long sheet is read row by row with its repeated short texts kept once (issue 17): the
tables are the same as the whole-sheet read gives, cell for cell, on our own workbooks of
every shape the reader knows and on the real workbooks of ../shared/corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from complaint_core import reader
from complaint_core.errors import BadSetting, NotAComplaintWorkbook, UnreadableWorkbook
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
# real workbooks only (odd/ holds the hostile ones, read only in a child)
REAL = sorted(p for folder in ("chinese", "excel_made") for p in (CORPUS / folder).iterdir()
              if p.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods"))


def _both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    def read() -> object:
        try:
            return reader.read_tables(path)
        except (UnreadableWorkbook, NotAComplaintWorkbook, BadSetting) as exc:
            return type(exc).__name__, str(exc)
    monkeypatch.setattr(reader, "SHARE_FROM_ROWS", 10**9)
    whole = read()
    monkeypatch.setattr(reader, "SHARE_FROM_ROWS", 0)
    return whole, read()


@pytest.mark.parametrize("shape", [
    {}, {"title_rows": 2, "shuffle_columns": True}, {"date1904": True, "lang": "en"},
    {"extra_columns": {"备注2": ["甲", "", "乙"] * 20}, "blank_rows_after": (3, 9)},
    {"header_row_offset": 4, "shop_code": "SH09"},
], ids=["plain", "titled-shuffled", "1904-english", "extras-blanks", "offset"])
def test_our_workbooks_read_the_same_either_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: dict) -> None:
    path = write_shop_workbook(tmp_path / "S.xlsx", sample_rows(60, seed=5, now=NOW), **shape)
    whole, shared = _both(path, monkeypatch)
    assert isinstance(shared, list) and shared == whole
    # the choices of a dropdown are one object each, not one per cell
    status = [r.cells[r.cell_index["status"]] for r in shared[0].rows if r.cell_index.get("status") is not None]
    assert len(status) == 60 and len({id(v) for v in status}) == len(set(status))


def test_every_sheet_of_the_corpus_gives_the_same_rows_either_way() -> None:
    # none of these is a complaint table, so the grids are compared, sheet by sheet
    from python_calamine import CalamineWorkbook

    assert len(REAL) > 150
    differ, sheets = [], 0
    for path in REAL:
        try:
            wb = CalamineWorkbook.from_path(str(path))
        except Exception:  # noqa: BLE001 - what calamine cannot open, the reader refuses (test_corpus)
            continue
        for name in wb.sheet_names:
            try:
                whole = wb.get_sheet_by_name(name).to_python()
            except Exception:  # noqa: BLE001 - a sheet calamine cannot read at all
                continue
            sheets += 1
            sheet = wb.get_sheet_by_name(name)
            if reader._shared_texts_grid(sheet) != whole or list(reader.rows_from_start(sheet)) != whole:
                differ.append(f"{path.name}!{name}")
    assert sheets > 300 and not differ


def test_rows_start_at_the_first_used_row_as_the_whole_read_gives_them(tmp_path: Path) -> None:
    # python-calamine's iter_rows gives the rows above the first used one as empty rows; the
    # grid of an xls or ods sheet too big to take whole was read that way, every row then
    # named that many rows too low
    from openpyxl import Workbook
    from python_calamine import CalamineWorkbook

    wb = Workbook()
    ws = wb.active
    ws["C4"], ws["E5"], ws["D9"] = "甲", 1.5, "乙"
    wb.save(tmp_path / "t.xlsx")
    sheet = CalamineWorkbook.from_path(str(tmp_path / "t.xlsx")).get_sheet_by_name(ws.title)
    assert sheet.start == (3, 2)
    whole = sheet.to_python()
    assert list(reader.rows_from_start(sheet)) == whole and len(whole) == 6
    grid, far = reader._bounded_grid(sheet, sheet.start)
    assert [row or [""] * 3 for row in grid] == whole and far == []   # a blank row comes as []
