"""The committed template equals a fresh build from the schema (compared semantically)."""

from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook

from complaint_core.reader import read_playbook, read_workbook
from complaint_core.schema import FIELDS, SHEET_COMPLAINTS, SHEET_LISTS, TABLE_NAME
from complaint_core.template import build_template
from tests.support.libreoffice import libreoffice_opens

COMMITTED = Path(__file__).resolve().parents[1] / "templates" / "complaint_form.xlsx"


def digest(path: Path) -> dict:
    wb = load_workbook(path)
    out: dict = {"sheets": [(ws.title, ws.sheet_state) for ws in wb.worksheets],
                 "names": sorted((n, d.attr_text) for n, d in wb.defined_names.items())}
    for ws in wb.worksheets:
        out[ws.title] = {
            "values": [[c.value for c in row] for row in ws.iter_rows()],
            "formats": [c.number_format for c in ws[2]] if ws.max_row >= 2 else [],
            "widths": {k: v.width for k, v in ws.column_dimensions.items()},
            "freeze": ws.freeze_panes,
            "tables": {t.displayName: (t.ref, [c.name for c in t.tableColumns]) for t in ws.tables.values()},
            "validations": sorted((str(dv.sqref), dv.type, dv.formula1) for dv in ws.data_validations.dataValidation),
            "conditional": sorted((str(rng.sqref), tuple(r.formula)) for rng in ws.conditional_formatting
                                  for r in rng.rules),
        }
    return out


def test_committed_template_matches_a_fresh_build(tmp_path):
    fresh = build_template(tmp_path / "fresh.xlsx")
    assert digest(COMMITTED) == digest(fresh), "run: complaint-desk template templates/complaint_form.xlsx"


def test_template_structure():
    wb = load_workbook(COMMITTED)
    ws = wb[SHEET_COMPLAINTS]
    assert [c.value for c in ws[1]] == [f.zh for f in FIELDS]
    assert all(isinstance(c.value, str) for c in ws[1])  # Excel drops tables with non-string headers
    assert TABLE_NAME in ws.tables and ws.freeze_panes == "A2"
    assert wb[SHEET_LISTS].sheet_state == "hidden"
    # Every enumerated field has a dropdown pointing at the hidden list sheet, never inline.
    formulas = {dv.formula1 for dv in ws.data_validations.dataValidation}
    assert formulas == {f"=list_{f.key}" for f in FIELDS if f.choices}
    assert all(len(f) < 255 for f in formulas)
    fmt = {f.key: ws.cell(row=2, column=i + 1).number_format for i, f in enumerate(FIELDS)}
    assert fmt["received_at"] == "yyyy-mm-dd hh:mm" and "¥" in fmt["loss_amount"] and fmt["description"] == "@"
    cf = " ".join(r.formula[0] for rng in ws.conditional_formatting for r in rng.rules)
    assert "NOW()" in cf and "TRIM" in cf
    assert {"处理手册", "使用说明", "设置"} <= set(wb.sheetnames)


def test_template_reads_back_as_an_empty_complaint_table(tmp_path):
    table = read_workbook(build_template(tmp_path / "t.xlsx", shop_code="SH07", lang="en"))
    assert table.rows == [] and table.shop_code == "SH07" and len(table.columns) == len(FIELDS)
    assert read_playbook(tmp_path / "t.xlsx").rules


def test_template_opens_in_libreoffice():
    csv = libreoffice_opens(COMMITTED)
    assert "投诉编号" in csv
