import zipfile
from datetime import datetime

import pytest
from openpyxl import Workbook

from complaint_core.errors import NotAComplaintWorkbook, UnreadableWorkbook, UnsafeWorkbook
from complaint_core.reader import read_workbook, table_from_grid
from complaint_core.schema import KEYS
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook


def test_reads_rows_with_all_fields(tmp_path):
    rows = sample_rows(12, seed=3, now=NOW)
    table = read_workbook(write_shop_workbook(tmp_path / "a.xlsx", rows))
    assert table.header_row == 1 and set(table.columns) == set(KEYS)
    assert [r.values["complaint_id"] for r in table.rows] == [r["complaint_id"] for r in rows]
    assert table.rows[0].values["received_at"] == rows[0]["received_at"]
    assert table.rows[0].values["customer_phone"] == rows[0]["customer_phone"]


def test_title_rows_english_shuffled_headers_extra_columns_and_gaps(tmp_path):
    rows = sample_rows(6, seed=4, now=NOW)
    path = write_shop_workbook(tmp_path / "b.xlsx", rows, lang="en", title_rows=2, shuffle_columns=True,
                               extra_columns={"会员等级": ["金卡", "银卡"]}, blank_rows_after=(2,))
    table = read_workbook(path)
    assert table.header_row == 3
    assert len(table.rows) == 6  # blank rows in the middle are skipped, not a stop
    assert [r.row for r in table.rows] == [4, 5, 6, 9, 10, 11]
    assert table.rows[0].extras == {"会员等级": "金卡"}
    assert "会员等级" in table.extra_columns
    assert [r.values["customer_name"] for r in table.rows] == [r["customer_name"] for r in rows]


def test_text_dates_and_full_width_digits(tmp_path):
    rows = sample_rows(3, seed=5, now=NOW)
    rows[0]["received_at"] = "2026年11月19日 14:30"
    rows[1]["received_at"] = "2026/11/19"
    rows[2]["received_at"] = "２０２６－１１－１９ ０８：０５"
    table = read_workbook(write_shop_workbook(tmp_path / "c.xlsx", rows))
    got = [r.values["received_at"] for r in table.rows]
    assert got == [datetime(2026, 11, 19, 14, 30), datetime(2026, 11, 19), datetime(2026, 11, 19, 8, 5)]


def test_1904_book_dates(tmp_path):
    rows = sample_rows(2, seed=6, now=NOW)
    table = read_workbook(write_shop_workbook(tmp_path / "d.xlsx", rows, date1904=True))
    assert table.date1904 is True
    assert table.rows[0].values["received_at"] == rows[0]["received_at"]


def test_shop_code_from_settings_sheet(tmp_path):
    table = read_workbook(write_shop_workbook(tmp_path / "e.xlsx", sample_rows(1, seed=1, now=NOW),
                                              shop_code="SH09"))
    assert table.shop_code == "SH09"


def test_random_workbook_is_not_a_complaint_workbook(tmp_path):
    wb = Workbook()
    wb.active.append(["日期", "金额", "备注"])
    wb.active.append([datetime(2026, 1, 1), 3, "x"])
    wb.save(tmp_path / "f.xlsx")
    with pytest.raises(NotAComplaintWorkbook, match="f.xlsx"):
        read_workbook(tmp_path / "f.xlsx")


def test_grid_path_equals_file_path(tmp_path):
    from python_calamine import CalamineWorkbook

    path = write_shop_workbook(tmp_path / "g.xlsx", sample_rows(5, seed=8, now=NOW), title_rows=1)
    grid = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("投诉登记").to_python()
    a = read_workbook(path)
    b = table_from_grid([[None if c == "" else c for c in row] for row in grid], sheet="投诉登记")
    assert [r.values for r in a.rows] == [r.values for r in b.rows]
    assert [r.row for r in a.rows] == [r.row for r in b.rows]


def _zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_bomb_refused_fast(tmp_path):
    import time

    path = _zip(tmp_path / "bomb.xlsx", {"xl/workbook.xml": "<workbook/>",
                                         "xl/worksheets/sheet1.xml": b"\0" * (300 << 20)})
    t = time.perf_counter()
    with pytest.raises(UnsafeWorkbook, match="zip"):
        read_workbook(path)
    assert time.perf_counter() - t < 1.0


def test_xml_entity_bomb_refused(tmp_path):
    lol = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><sst>&lol2;</sst>')
    path = _zip(tmp_path / "xml.xlsx", {"xl/workbook.xml": "<workbook/>", "xl/sharedStrings.xml": lol})
    with pytest.raises(UnsafeWorkbook, match="XML"):
        read_workbook(path)


@pytest.mark.parametrize("content, reason", [
    (b"", "空文件"), (b"PK\x03\x04truncated", "zip"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, ".xls"),
    (b"hello world", "CSV"),
])
def test_foreign_files_rejected_with_reason(tmp_path, content, reason):
    path = tmp_path / "x.xlsx"
    path.write_bytes(content)
    with pytest.raises(UnreadableWorkbook) as err:
        read_workbook(path)
    assert reason in str(err.value) and str(path) in str(err.value)
