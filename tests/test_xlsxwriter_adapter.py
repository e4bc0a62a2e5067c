"""The one module that knows XlsxWriter's unpublished output shape says so loudly when it changes.

Each check is fed the real XML XlsxWriter wrote, then that XML altered the way a new release
could alter it: the check must stop the write with WriterShapeChanged, never write a workbook
Excel would have to repair.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter.worksheet

from complaint_core.atomic import atomic_write
from complaint_core.errors import ComplaintDeskError
from complaint_core.merged import xlsxwriter_adapter as adapter
from complaint_core.merged.model import Column, SheetData
from complaint_core.merged.xlsx import NUMBER_FORMATS, write_workbook

COLUMNS = [Column("t", "文本"), Column("d", "时间", "datetime"), Column("m", "金额", "money")]


def _sheets() -> list[SheetData]:
    """A sheet without a Table first, so Table parts and sheet parts are numbered apart."""
    return [SheetData("来源", COLUMNS, [["a", None, 1.0]], as_table=False),
            SheetData("全部投诉", COLUMNS, [[f"r{i}", None, i * 1.5] for i in range(5)], note="说明"),
            SheetData("逾期", COLUMNS, [["x", None, 2.0]])]


def _workbook(tmp_path: Path) -> Path:
    out = tmp_path / "m.xlsx"
    write_workbook(out, _sheets())
    return out


def _part(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def _sheet_xml(path: Path, sheet: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(adapter.sheet_parts(zf)[sheet].part)


def test_parts_come_from_the_relationships_not_from_file_names(tmp_path: Path) -> None:
    out = _workbook(tmp_path)
    with zipfile.ZipFile(out) as zf:
        parts = adapter.sheet_parts(zf)
    assert list(parts) == ["来源", "全部投诉", "逾期", "_lists"]
    assert parts["来源"].tables == []
    assert parts["全部投诉"].tables != parts["逾期"].tables
    wb = openpyxl.load_workbook(out)
    assert wb["全部投诉"].tables["AllComplaints"].ref == "A2:C7"
    assert wb["逾期"].tables["Overdue"].ref == "A1:C2"
    # the Table part found for 全部投诉 is the one holding its Table
    assert b'name="AllComplaints"' in _part(out, parts["全部投诉"].tables[0])


def test_styles_are_checked_against_styles_xml(tmp_path: Path) -> None:
    styles = _part(_workbook(tmp_path), "xl/styles.xml")
    wb = openpyxl.load_workbook(tmp_path / "m.xlsx")
    money = wb["全部投诉"]["C3"]
    assert money.number_format == NUMBER_FORMATS["money"]
    # the streamed rows carry no cell references: C3 is the third cell of the first data row,
    # after the text cell and the empty time cell
    first = _sheet_xml(tmp_path / "m.xlsx", "全部投诉").split(b"<row>")[1]
    index = int(first.split(b'<c/><c s="')[1].split(b'"')[0])
    adapter.check_styles(styles, {index: "#,##0.00"})
    with pytest.raises(adapter.WriterShapeChanged, match="number format"):
        adapter.check_styles(styles, {index: "yyyy-mm-dd"})
    with pytest.raises(adapter.WriterShapeChanged, match="not in cellXfs"):
        adapter.check_styles(styles, {999: "0"})


def test_format_without_the_private_index_stops_the_write() -> None:
    class NewFormat:   # a release that renamed the private method and the attribute
        xf_index = None

    with pytest.raises(adapter.WriterShapeChanged, match="_get_xf_index"):
        adapter.fix_style_indexes([NewFormat()])
    with pytest.raises(adapter.WriterShapeChanged, match="xf_index"):
        adapter.style_index(NewFormat())


def test_table_ref_must_be_found_exactly_twice() -> None:
    table = (b'<table ref="A2:C3" totalsRowShown="0"><autoFilter ref="A2:C3"/>'
             b'<tableColumns count="3"/></table>')
    assert adapter.stretch_table(table, "A2:C3", "A2:C900").count(b'ref="A2:C900"') == 2
    no_filter = table.replace(b'<autoFilter ref="A2:C3"/>', b"")
    with pytest.raises(adapter.WriterShapeChanged, match="found 1x"):
        adapter.stretch_table(no_filter, "A2:C3", "A2:C900", part="xl/tables/table1.xml")
    with pytest.raises(adapter.WriterShapeChanged, match="found 0x"):
        adapter.stretch_table(table.replace(b'ref="', b"ref='"), "A2:C3", "A2:C900")


def test_sheet_split_checks_dimension_sheetdata_and_rows(tmp_path: Path) -> None:
    real = _sheet_xml(_workbook(tmp_path), "全部投诉")
    frame = real.split(b"<row>")[0] + real[real.index(b"</sheetData>"):]   # without the streamed rows
    head, tail = adapter.split_sheet(frame, "A1:C7", 3)
    assert b'<dimension ref="A1:C7"/>' in head and head.endswith(b"</row>") and tail.startswith(b"</sheetData>")
    assert head + tail == frame.replace(adapter._DIMENSION.search(frame).group(), b'<dimension ref="A1:C7"/>')
    with pytest.raises(adapter.WriterShapeChanged, match="dimension"):
        adapter.split_sheet(adapter._DIMENSION.sub(b"", frame), "A1:C7", 3)
    with pytest.raises(adapter.WriterShapeChanged, match="dimension"):
        adapter.split_sheet(frame.replace(b"<dimension ref=", b"<dimension  ref="), "A1:C7", 3)
    with pytest.raises(adapter.WriterShapeChanged, match="sheetData"):
        adapter.split_sheet(frame.replace(b"</sheetData>", b"</sheetData><sheetData/>"), "A1:C7", 3)
    # XlsxWriter wrote a data row of its own: streamed rows would overlap it
    with pytest.raises(adapter.WriterShapeChanged, match="wrote row 2"):
        adapter.split_sheet(frame, "A1:C7", 2)
    empty = b'<worksheet><dimension ref="A1"/><sheetData/></worksheet>'
    assert adapter.split_sheet(empty, "A1:B2", 1) == (b'<worksheet><dimension ref="A1:B2"/><sheetData>',
                                                      b"</sheetData></worksheet>")


def test_a_writer_that_changed_shape_fails_the_merge_in_one_line(tmp_path: Path, monkeypatch) -> None:
    out = _workbook(tmp_path)
    before = out.read_bytes()
    # a release that stopped writing <dimension>: the streamed range could not be declared
    monkeypatch.setattr(xlsxwriter.worksheet.Worksheet, "_write_dimension", lambda self: None)
    with pytest.raises(ComplaintDeskError) as err, atomic_write(out) as tmp:   # as render_merged writes
        write_workbook(tmp, _sheets())
    assert isinstance(err.value, adapter.WriterShapeChanged)
    with zipfile.ZipFile(out) as zf:
        part = adapter.sheet_parts(zf)["来源"].part   # the first streamed sheet, in the same layout
    assert f"{part}: expected one <dimension" in str(err.value) and "\n" not in str(err.value)
    # the managers keep the last good workbook, and no half-written file lies beside it
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.xlsx"]


def test_one_column_letter_function_agrees_with_both_writers() -> None:
    # the merged workbook, the template and the marks all take their letters from model.py
    from openpyxl.utils import get_column_letter
    from xlsxwriter.utility import xl_col_to_name

    from complaint_core.model import column_letter

    for index in (*range(0, 800), 16_383):
        assert column_letter(index) == xl_col_to_name(index) == get_column_letter(index + 1)
