"""Every complaint table of a workbook is read, each row with its sheet and row as provenance;
cells far beyond the table are cut out before python-calamine allocates, and named."""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner
from openpyxl import Workbook, load_workbook

from complaint_core.isolate import read_tables_isolated
from complaint_core.reader import read_tables
from complaint_core.schema import FIELDS
from complaint_core.validate import validate_table
from complaint_desk.cli import main
from sync.api import merge_once
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

HEAD = [f.zh for f in FIELDS]


def _put(ws, top: int, left: int, rows: list[dict]) -> None:
    for c, h in enumerate(HEAD):
        ws.cell(row=top, column=left + c, value=h)
    for r, row in enumerate(rows, start=1):
        for c, f in enumerate(FIELDS):
            v = row.get(f.key)
            cell = ws.cell(row=top + r, column=left + c, value=v)
            if isinstance(v, str):
                cell.data_type = "s"


def _many_tables(path: Path) -> Path:
    """投诉登记 with a second table below; 投诉登记2025 with two tables side by side."""
    wb = Workbook()
    ws = wb.active
    ws.title = "投诉登记"
    _put(ws, 1, 1, sample_rows(5, seed=1, now=NOW, shop="SH01"))
    _put(ws, 10, 1, sample_rows(3, seed=2, now=NOW, shop="SH01"))
    old = wb.create_sheet("投诉登记2025")
    _put(old, 2, 1, sample_rows(4, seed=3, now=NOW, shop="SH01"))
    _put(old, 2, len(HEAD) + 3, sample_rows(2, seed=4, now=NOW, shop="SH01"))
    wb.create_sheet("备忘").append(["这里没有投诉表"])
    wb.save(path)
    return path


def test_every_table_of_every_sheet_is_read(tmp_path: Path) -> None:
    tables = read_tables(_many_tables(tmp_path / "多表.xlsx"))
    got = [(t.sheet, t.header_row, t.first_col, [r.row for r in t.rows]) for t in tables]
    assert got == [
        ("投诉登记", 1, 0, [2, 3, 4, 5, 6]),
        ("投诉登记", 10, 0, [11, 12, 13]),
        ("投诉登记2025", 2, 0, [3, 4, 5, 6]),
        ("投诉登记2025", 2, len(HEAD) + 2, [3, 4]),
    ]
    # the blank rows between the tables end nothing early, and the right-hand table's cells
    # are named by their own columns
    assert tables[3].cell("complaint_id", 3) == f"{_letter(len(HEAD) + 2)}3"
    assert [r.values["complaint_id"] for r in tables[3].rows] == \
        [r["complaint_id"] for r in sample_rows(2, seed=4, now=NOW, shop="SH01")]


def _letter(i: int) -> str:
    from complaint_core.model import column_letter

    return column_letter(i)


def test_merge_stores_every_table_with_its_sheet(tmp_path: Path) -> None:
    shop = tmp_path / "SH01"
    shop.mkdir()
    _many_tables(shop / "多表.xlsx")
    out = tmp_path / "merged.xlsx"
    merge_once([shop], out, now=NOW)
    wb = load_workbook(out, read_only=True)
    rows = list(wb["全部投诉"].iter_rows(min_row=3, values_only=True))
    assert len(rows) == 14
    from complaint_core.store import open_store
    from complaint_core.store.tables import source_rows

    store = open_store(str(out.with_name(".merged.state.sqlite")))
    with store.engine.connect() as c:
        where = sorted((r.sheet, r.row) for r in c.execute(source_rows.select()))
    store.engine.dispose()
    assert where == sorted([("投诉登记", r) for r in (2, 3, 4, 5, 6, 11, 12, 13)] +
                           [("投诉登记2025", r) for r in (3, 3, 4, 4, 5, 6)])
    # merged again unchanged: nothing new, nothing deleted
    merge_once([shop], out, now=NOW)
    store = open_store(str(out.with_name(".merged.state.sqlite")))
    with store.engine.connect() as c:
        assert all(r.version == 1 and not r.deleted for r in c.execute(source_rows.select()))
    store.engine.dispose()


def test_validate_reports_every_table(tmp_path: Path) -> None:
    path = _many_tables(tmp_path / "多表.xlsx")
    res = CliRunner().invoke(main, ["validate", str(path), "--json", "--now", NOW.isoformat()])
    import json

    doc = json.loads(res.output)
    sheets = {f["sheet"] for f in doc["files"][0]["findings"]}
    assert res.exit_code in (0, 1) and "Traceback" not in res.output
    assert sheets <= {"投诉登记", "投诉登记2025"}
    res = CliRunner().invoke(main, ["validate", str(path), "--now", NOW.isoformat()])
    assert "14 行" in res.output


def _stray(path: Path, ref: str) -> Path:
    write_shop_workbook(path, sample_rows(6, seed=8, now=NOW))
    wb = load_workbook(path)
    wb["投诉登记"][ref] = "误输入"
    wb.save(path)
    return path


def test_far_cells_are_cut_out_before_allocation_and_named(tmp_path: Path) -> None:
    for ref in ("XFD1048576", "AJ1048576"):
        path = _stray(tmp_path / f"{ref}.xlsx", ref)
        t = time.perf_counter()
        # 300 MiB for the whole child: calamine would ask for 512 GiB (XFD) or 1.6 GB (AJ)
        tables = read_tables_isolated(path, memory_mb=300, timeout=20)
        assert time.perf_counter() - t < 5
        assert len(tables[0].rows) == 6
        assert tables[0].stray_cells == [("投诉登记", ref, "误输入")]
        stray = [f for f in validate_table(tables[0], now=NOW) if f.code == "stray_cell"]
        assert [(f.sheet, f.cell, f.row) for f in stray] == [("投诉登记", ref, 1048576)]
        assert ref in stray[0].message and "误输入" in stray[0].message


def test_validate_and_suggest_survive_a_far_cell(tmp_path: Path) -> None:
    path = _stray(tmp_path / "far.xlsx", "XFD1048576")
    res = CliRunner().invoke(main, ["validate", str(path), "--now", NOW.isoformat()])
    assert res.exit_code == 0 and "XFD1048576" in res.output, res.output   # a warning, not an error
    res = CliRunner().invoke(main, ["suggest", str(path), "--now", NOW.isoformat()])
    assert res.exit_code == 0, res.output
    assert load_workbook(path)["投诉登记"]["XFD1048576"].value == "误输入"   # the shop's cell is kept


def test_far_cell_in_the_merge_is_a_finding_not_a_refusal(tmp_path: Path) -> None:
    shop = tmp_path / "SH01"
    shop.mkdir()
    _stray(shop / "投诉.xlsx", "XFD1048576")
    out = tmp_path / "merged.xlsx"
    report = merge_once([shop], out, now=NOW)
    assert not report.failed and report.read[0].rows == 6
    found = list(load_workbook(out, read_only=True)["校验问题"].iter_rows(values_only=True))
    assert any("XFD1048576" in " ".join(str(v) for v in row) for row in found)


def test_suggest_fills_every_table_with_distinct_ids(tmp_path: Path) -> None:
    rows = sample_rows(3, seed=1, now=NOW, shop="SH01")
    for r in rows:
        r["complaint_id"] = None          # new complaints: the add-in would number them
    wb = Workbook()
    _put(wb.active, 1, 1, rows)
    wb.active.title = "投诉登记"
    _put(wb.create_sheet("投诉登记2025"), 1, 1, [dict(r) for r in rows])
    path = tmp_path / "两表.xlsx"
    wb.save(path)
    res = CliRunner().invoke(main, ["suggest", str(path), "--now", NOW.isoformat()])
    assert res.exit_code == 0, res.output
    ids = [r.values["complaint_id"] for t in read_tables(path) for r in t.rows]
    assert len(ids) == 6 and None not in ids and len(set(ids)) == 6


def test_an_id_repeated_on_a_copied_sheet_is_reported(tmp_path: Path) -> None:
    from complaint_core.validate import validate_tables

    rows = sample_rows(3, seed=1, now=NOW, shop="SH01")
    wb = Workbook()
    wb.active.title = "投诉登记"
    _put(wb.active, 1, 1, rows)
    _put(wb.create_sheet("投诉登记 (2)"), 1, 1, rows[:1])     # a sheet copied as a backup
    path = tmp_path / "副本表.xlsx"
    wb.save(path)
    dup = [f for f in validate_tables(read_tables(path), now=NOW) if f.code == "duplicate_id"]
    assert [(f.sheet, f.row) for f in dup] == [("投诉登记 (2)", 2)]
    assert "投诉登记!2" in dup[0].message
