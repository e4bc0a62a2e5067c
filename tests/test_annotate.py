"""--mark and suggest write into a shop's workbook without breaking its table, lists or formats."""

from __future__ import annotations

from openpyxl import load_workbook

from complaint_core.annotate import AUTHOR, fill_file, mark_file
from complaint_core.reader import read_workbook
from complaint_core.schema import SHEET_FINDINGS, TABLE_NAME
from complaint_core.suggest import fills_for_table
from complaint_core.validate import validate_table
from tests.support.libreoffice import libreoffice_opens
from tests.support.workbooks import (
    NOW,
    inject_defects,
    sample_rows,
    write_rows,
    write_shop_workbook,
)


def structure(path):
    ws = load_workbook(path).worksheets[0]
    return (sorted((str(d.sqref), d.formula1) for d in ws.data_validations.dataValidation),
            sorted((str(r.sqref), tuple(x.formula)) for r in ws.conditional_formatting for x in r.rules),
            {t.displayName: t.ref for t in ws.tables.values()})


def test_mark_keeps_template_features_and_clears_fixed_marks(tmp_path):
    rows = sample_rows(10, seed=1, now=NOW)
    inject_defects(rows, now=NOW)
    path = write_rows(tmp_path / "shop.xlsx", rows, shop="SH01")
    before = structure(path)
    table = read_workbook(path)
    findings = validate_table(table, now=NOW)
    mark_file(path, findings, sheet=table.sheet)
    assert structure(path) == before
    wb = load_workbook(path)
    ws = wb.worksheets[0]
    assert ws["G3"].comment.author == AUTHOR and "bad_phone" in ws["G3"].comment.text
    assert wb[SHEET_FINDINGS].max_row == len(findings) + 1

    # Fix the phone, re-validate: its mark goes, the other marks stay.
    ws["G3"].value = "13800138000"
    wb.save(path)
    table = read_workbook(path)
    mark_file(path, validate_table(table, now=NOW), sheet=table.sheet)
    ws = load_workbook(path).worksheets[0]
    assert ws["G3"].comment is None and ws["G3"].fill.fgColor.rgb != "FFFF9999"
    assert ws["F5"].comment is not None
    libreoffice_opens(path)


def test_fill_never_overwrites_and_keeps_structure(tmp_path):
    rows = sample_rows(5, seed=2, now=NOW)
    rows[0]["suggested_steps"] = "店长写的"
    rows[1]["complaint_id"] = None
    path = write_rows(tmp_path / "shop.xlsx", rows, shop="SH01")
    before = structure(path)
    table = read_workbook(path)
    fill_file(path, table, fills_for_table(table, now=NOW))
    assert structure(path) == before
    after = read_workbook(path)
    assert after.rows[0].values["suggested_steps"] == "店长写的"
    assert after.rows[1].values["complaint_id"].startswith("SH01-")
    assert all(r.values["contact_due"] for r in after.rows)


def test_fill_adds_missing_columns_to_a_plain_sheet(tmp_path):
    rows = [{k: v for k, v in r.items() if k not in ("suggested_steps",)} for r in sample_rows(3, seed=3, now=NOW)]
    path = write_shop_workbook(tmp_path / "plain.xlsx", rows)
    wb = load_workbook(path)
    ws = wb.active
    for col in range(ws.max_column, 0, -1):
        if ws.cell(row=1, column=col).value in ("建议处理步骤", "联系截止", "反馈截止", "回访截止"):
            ws.delete_cols(col)
    wb.save(path)
    table = read_workbook(path)
    assert "suggested_steps" not in table.columns
    fill_file(path, table, fills_for_table(table, now=NOW))
    again = read_workbook(path)
    assert {"suggested_steps", "contact_due", "feedback_due"} <= set(again.columns)
    assert "六步法" in again.rows[0].values["suggested_steps"]


def test_fill_extends_the_excel_table(tmp_path):
    rows = sample_rows(2, seed=4, now=NOW)
    path = write_rows(tmp_path / "t.xlsx", rows, shop="SH01")
    wb = load_workbook(path)
    ws = wb.worksheets[0]
    from openpyxl.utils import get_column_letter

    from complaint_core.schema import KEYS

    first = KEYS.index("suggested_steps")          # 建议处理步骤..回访截止, wherever the schema puts them
    ws.delete_cols(first + 1, 4)                   # drop them from sheet and table
    tbl = ws.tables[TABLE_NAME]
    tbl.ref = tbl.ref.replace(get_column_letter(len(KEYS)), get_column_letter(len(KEYS) - 4))
    del tbl.tableColumns[first:first + 4]
    for i, c in enumerate(tbl.tableColumns, start=1):
        c.id = i
    for i, c in enumerate(tbl.tableColumns):
        c.name = ws.cell(row=1, column=i + 1).value
    wb.save(path)
    table = read_workbook(path)
    fill_file(path, table, fills_for_table(table, now=NOW))
    tbl = load_workbook(path).worksheets[0].tables[TABLE_NAME]
    assert [c.name for c in tbl.tableColumns][-4:] == ["建议处理步骤", "联系截止", "反馈截止", "回访截止"]
    libreoffice_opens(path)


def test_dangerous_text_stays_text(tmp_path):
    rows = sample_rows(2, seed=5, now=NOW)
    rows[0]["description"] = '=HYPERLINK("http://evil","点我")'
    rows[1]["customer_name"] = "@SUM(1+1)"
    path = write_rows(tmp_path / "x.xlsx", rows, shop="SH01")
    table = read_workbook(path)
    fill_file(path, table, fills_for_table(table, now=NOW))
    mark_file(path, validate_table(table, now=NOW), sheet=table.sheet)
    wb = load_workbook(path)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
        assert not ws._hyperlinks
