"""The merged workbook: contract sheets, text stays text, a manager's edit saved mid-write survives."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from complaint_core.merged.model import SHEET_ORDER, Column, SheetData
from complaint_core.merged.render import render_merged
from complaint_core.store import open_store
from sync.api import merge_into
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook


def _shop(tmp: Path, n: int, **changes: object) -> Path:
    folder = tmp / "SH01"
    folder.mkdir(exist_ok=True)
    rows = sample_rows(n, seed=5, now=NOW, shop="SH01")
    rows[0].update(changes)
    write_shop_workbook(folder / "投诉.xlsx", rows)
    return folder


def ref_of(store, shop: str, complaint_id: str) -> str:
    """The 记录标识 of the complaint with this shop and id (managers' cells are kept by it)."""
    return next(r["record_ref"] for r in store.current_records()
                if r["shop"] == shop and r["complaint_id"] == complaint_id)


def test_text_stays_text_and_every_sheet(tmp_path: Path) -> None:
    folder = _shop(tmp_path, 5, description="=HYPERLINK(\"http://x\",\"点\")", notes="http://evil.example")
    store = open_store(tmp_path / "s.sqlite")
    out = tmp_path / "m.xlsx"
    merge_into(store, [folder], out, now=NOW)

    report = render_merged(store, out, now=NOW)
    assert report.sheets == list(SHEET_ORDER)
    wb = openpyxl.load_workbook(out)
    ws = wb["全部投诉"]
    head = [c.value for c in ws[2]]
    cell = ws.cell(row=3, column=head.index("投诉内容") + 1)
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    assert not ws._hyperlinks
    assert ws.freeze_panes == "A3"
    # an Excel Table over header + every data row, with its filter buttons
    table = ws.tables["AllComplaints"]
    assert table.ref == f"A2:{ws.cell(row=2, column=len(head)).column_letter}{ws.max_row}"
    assert table.autoFilter is not None and [c.name for c in table.tableColumns] == head
    assert ws.data_validations.dataValidation
    assert wb["_lists"].sheet_state == "hidden"
    assert wb["汇总"]._charts


def test_manager_edit_saved_while_writing_survives(tmp_path: Path) -> None:
    folder = _shop(tmp_path, 600)
    store = open_store(tmp_path / "s.sqlite")
    out = tmp_path / "m.xlsx"
    merge_into(store, [folder], out, now=NOW)
    # the manager types 主管批示 and saves (Excel: temp + rename) while the daemon is writing
    wb = openpyxl.load_workbook(out)
    ws = wb["全部投诉"]
    head = [c.value for c in ws[2]]
    target = ws.cell(row=10, column=1).value
    ws.cell(row=10, column=head.index("主管批示") + 1, value="已批示：严肃处理")
    edited = tmp_path / "edited.xlsx"
    wb.save(edited)
    os.utime(edited, (time.time() + 5, time.time() + 5))

    from complaint_core.merged import render

    write = render._write
    saved: list[int] = []

    def write_while_the_manager_saves(*args: Any, **kwargs: Any) -> Any:
        got = write(*args, **kwargs)
        if not saved:   # the manager's Excel saves (temp + rename) while the daemon writes
            saved.append(1)
            os.replace(edited, out)
        return got

    # the next day: the workbook changes (a render with nothing new would leave the file alone)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(render, "_write", write_while_the_manager_saves)
        report = render_merged(store, out, now=NOW + timedelta(days=1))
    assert report.rerendered
    g = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("全部投诉").to_python()
    col = g[1].index("主管批示")
    assert next(r for r in g[2:] if r[0] == target)[col] == "已批示：严肃处理"
    assert store.manager_edits("全部投诉")[(ref_of(store, "SH01", target),)] == {"manager_approval": "已批示：严肃处理"}


def test_rows_beyond_excel_limit_are_announced_not_silently_dropped(tmp_path, monkeypatch):
    from complaint_core.merged import xlsx

    monkeypatch.setattr(xlsx, "EXCEL_MAX_ROWS", 12)  # the real limit, scaled down
    sheet = SheetData(name="全部投诉", columns=[Column("a", "A")], rows=[[f"r{i}"] for i in range(20)])
    xlsx.write_workbook(tmp_path / "m.xlsx", [sheet])
    from python_calamine import CalamineWorkbook

    grid = CalamineWorkbook.from_path(str(tmp_path / "m.xlsx")).get_sheet_by_name("全部投诉").to_python()
    assert len(grid) == 12 and "另有 10 条记录" in grid[-1][0]


def test_two_threads_render_one_workbook_in_turn(tmp_path: Path, monkeypatch) -> None:
    from complaint_core.merged import render

    # `complaint-desk run`: the watcher thread and the scan job both rewrite the merged workbook
    folder = _shop(tmp_path, 5)
    store = open_store(tmp_path / "s.sqlite")
    out = tmp_path / "m.xlsx"
    merge_into(store, [folder], out, now=NOW)
    inside: list[int] = []
    overlaps: list[int] = []

    write = render._write
    done: list[int] = []

    def slow(*args: Any, **kwargs: Any) -> Any:
        inside.append(1)
        if len(inside) > 1:
            overlaps.append(len(inside))
        time.sleep(0.3)
        inside.pop()
        got = write(*args, **kwargs)
        done.append(1)
        return got

    monkeypatch.setattr(render, "_write", slow)
    # a day apart: each render has something new on 逾期 and 汇总, so none is skipped as unchanged
    threads = [threading.Thread(target=render_merged, args=(store, out), kwargs={"now": NOW + timedelta(days=i + 1)})
               for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert overlaps == [] and len(done) == 3   # all three wrote, one at a time
    assert openpyxl.load_workbook(out, read_only=True).sheetnames[0] == "汇总"


def test_untouched_workbook_is_not_read_back(tmp_path: Path, monkeypatch) -> None:
    # Reading 100,000 rows back costs a third of a rewrite: skip it when the file is exactly
    # as we wrote it, and never skip it once a manager has saved it.
    from complaint_core.merged import render

    folder = _shop(tmp_path, 8)
    store = open_store(tmp_path / "s.sqlite")
    out = tmp_path / "m.xlsx"
    merge_into(store, [folder], out, now=NOW)
    calls: list[Path] = []
    real = render.changed_cells   # how the store reads its own workbook back
    monkeypatch.setattr(render, "changed_cells", lambda path, *a: calls.append(path) or real(path, *a))
    render_merged(store, out, now=NOW)
    render_merged(store, out, now=NOW)
    assert calls == []
    wb = openpyxl.load_workbook(out)
    ws = wb["全部投诉"]
    head = [c.value for c in ws[2]]
    target = ws.cell(row=4, column=1).value
    ws.cell(row=4, column=head.index("主管批示") + 1, value="经理：已处理")
    wb.save(out)
    render_merged(store, out, now=NOW)
    assert calls == [out]
    assert store.manager_edits("全部投诉")[(ref_of(store, "SH01", target),)] == {"manager_approval": "经理：已处理"}
