"""The streamed rows of the merged workbook read back exactly like XlsxWriter's own cells.

Golden comparison done semantically (values and number formats through openpyxl), with the
values a shop really produces and the ones an attacker would type.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st

from complaint_core.merged.model import Column, SheetData
from complaint_core.merged.rowxml import Cells, _serial_text
from complaint_core.merged.xlsx import write_workbook

HOSTILE = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "=HYPERLINK(\"http://x\",\"点\")", "http://evil.example",
           "\tleading tab", " 前后有空格 ", "a\x00b\x07c\x1fd", "_x0041_ literal", "&<>\"'", "𠮷😀",
           "换行\n第二行", "\ufffe", "12345678901", "0001", "\u3000全角空格开头", "结尾全角空格\u3000", "\xa0"]
COLUMNS = [Column("t", "文本"), Column("d", "时间", "datetime"), Column("m", "金额", "money"),
           Column("i", "行", "int"), Column("x", "其他")]


def _rows() -> list[list]:
    rows = [[h, datetime(2026, 10, 1, 21, 30), 12.5, 7, None] for h in HOSTILE]
    rows += [["日期", date(2026, 10, 8), Decimal("99.90"), True, 0],
             ["1900", datetime(1900, 1, 2, 12), -0.0, False, datetime(1900, 2, 28)],
             ["1900-03", datetime(1900, 3, 1), 1e300, 0, datetime(1899, 12, 1)],
             ["tz", datetime(2026, 10, 1, 8, tzinfo=UTC), math.nan, math.inf, ""],
             ["超长", None, None, None, "长" * 40_000]]
    return rows


def _reference(path: Path, rows: list[list]) -> None:
    """The same cells through XlsxWriter's cell calls (the writer we trust)."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False, "remove_timezone": True})
    fmts = {"datetime": wb.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
            "date": wb.add_format({"num_format": "yyyy-mm-dd"}),
            "money": wb.add_format({"num_format": "#,##0.00"}), "int": wb.add_format({"num_format": "0"})}
    ws = wb.add_worksheet("表")
    for c, col in enumerate(COLUMNS):
        ws.write_string(0, c, col.header)
    for r, row in enumerate(rows, start=1):
        for c, v in enumerate(row):
            if v is None or v == "":
                continue
            if isinstance(v, datetime):
                if v.replace(tzinfo=None) < datetime(1900, 1, 1):
                    ws.write_string(r, c, v.isoformat())
                else:
                    ws.write_datetime(r, c, v, fmts["datetime"])
            elif isinstance(v, date):
                ws.write_datetime(r, c, datetime(v.year, v.month, v.day), fmts["date"])
            elif isinstance(v, bool):
                ws.write_boolean(r, c, v)
            elif isinstance(v, int | float | Decimal):
                if not math.isfinite(float(v)):
                    ws.write_string(r, c, str(v))
                else:
                    ws.write_number(r, c, float(v) if isinstance(v, Decimal) else v, fmts.get(COLUMNS[c].kind))
            else:
                ws.write_string(r, c, v[:32_767])
    wb.close()


def _cells(path: Path, sheet: str, first: int) -> list[list]:
    """(value, number format) per cell: values by calamine (openpyxl does not undo Excel's
    _xHHHH_ escapes in inline strings), formats by openpyxl."""
    from python_calamine import CalamineWorkbook

    grid = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()
    ws = openpyxl.load_workbook(path)[sheet]
    return [[(grid[r][c] if c < len(grid[r]) else "", cell.number_format if cell.data_type == "n" or cell.is_date
              else None) for c, cell in enumerate(row)]
            for r, row in enumerate(ws.iter_rows(min_row=first, max_col=len(COLUMNS)), start=first - 1)]


def _read_back_like_xlsxwriter(tmp_path: Path, rows: list[list]) -> list[list]:
    """``rows`` written by us and by XlsxWriter's cell calls read back alike; ours, read back."""
    ours, ref = tmp_path / "ours.xlsx", tmp_path / "ref.xlsx"
    write_workbook(ours, [SheetData("表", COLUMNS, [list(r) for r in rows], note="")])
    _reference(ref, rows)
    got, want = _cells(ours, "表", 1), _cells(ref, "表", 1)
    assert len(got) == len(rows) + 1
    for r, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"row {r + 1}: {g} != {w}"
    return got


def test_streamed_rows_read_back_like_xlsxwriter_cells(tmp_path: Path) -> None:
    rows = _rows()
    got = _read_back_like_xlsxwriter(tmp_path, rows)
    # customer text is text: no cell of ours is a formula, none is a link
    ws = openpyxl.load_workbook(tmp_path / "ours.xlsx")["表"]
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    assert not ws._hyperlinks
    assert ws["A2"].value == "=1+1" and got[9][0][0] == "a\x00b\x07c\x1fd" and got[10][0][0] == "_x0041_ literal"
    assert ws[f"E{len(rows) + 1}"].value == "长" * 32_767


def test_rows_of_one_type_per_column_read_back_like_xlsxwriter_cells(tmp_path: Path) -> None:
    # a merge's columns are mostly of one type, and such a column is encoded in one go (the
    # checks over the whole column): every value a column holds in real life, with one
    # hostile text among clean ones, one moment before 1900 among modern ones, a NaN among
    # amounts, so that each column's slow path and fast path meet in one sheet
    rows = [[f"顾客{i}：包装破损", datetime(2026, 10, 1, 9, i % 60, i % 7), i * 1.25, i, None if i % 3 else "备注"]
            for i in range(300)]
    rows[17][0] = " 前后有空格 "
    rows[40][0] = "_x0041_ literal"
    rows[41][4] = "a\x00b"
    rows[99][1] = datetime(1899, 12, 1)
    rows[150][2] = math.nan
    rows[151][3] = True
    rows[299][4] = None
    _read_back_like_xlsxwriter(tmp_path, rows)


_VALUES = st.one_of(
    st.none(), st.just(""), st.text(max_size=8), st.sampled_from(HOSTILE), st.integers(), st.floats(),
    st.booleans(), st.decimals(allow_nan=False, places=2),
    st.datetimes(min_value=datetime(1800, 1, 1)), st.dates(),
    st.datetimes(min_value=datetime(1900, 3, 1), timezones=st.just(UTC)))
# a column of one kind (as a merge's columns are), or of any: both ways through the encoder
_COLUMN = st.one_of(st.just(_VALUES), st.sampled_from([
    st.one_of(st.none(), st.just(""), st.sampled_from(["包装破损", "退款", "a b", "x"])),
    st.one_of(st.none(), st.datetimes(min_value=datetime(1900, 3, 1))),
    st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False))]))


@st.composite
def _table(draw: st.DrawFn) -> tuple[list[list], bool, int]:
    width, first = draw(st.integers(0, 5)), draw(st.integers(0, 3))
    kinds = [draw(_COLUMN) for _ in range(width)]
    rows = draw(st.lists(st.tuples(*kinds).map(list), max_size=12))
    if rows and draw(st.booleans()):
        rows.append(rows[0][:-1])   # a ragged row: the encoder goes row by row
    return rows, draw(st.booleans()), first


@settings(max_examples=400, deadline=None)
@given(_table())
def test_a_column_at_a_time_writes_what_row_by_row_writes(table: tuple[list[list], bool, int]) -> None:
    rows, pad, first = table
    cells = Cells([None, 7, None, 8, None, 9, None, None], {"datetime": 5, "date": 6})
    assert cells.many(rows, pad=pad, first=first) == [cells.xml(r, pad=pad, first=first) for r in rows]
    if not pad and not first:
        assert cells.rows(rows) == [f"<row>{x}</row>" if x else "<row/>" for x in cells.many(rows)]


@st.composite
def _few_values(draw: st.DrawFn) -> list[list]:
    """Columns of a few texts repeated (门店, 状态, …), some turning many-valued past the sample."""
    width = draw(st.integers(1, 4))
    pools = [draw(st.lists(st.one_of(st.none(), st.just(""), st.text(max_size=6), st.sampled_from(HOSTILE)),
                           min_size=1, max_size=20)) for _ in range(width)]
    n = draw(st.integers(64, 400))
    picks = draw(st.lists(st.integers(0, 19), min_size=n * width, max_size=n * width))
    rows = [[pools[c][picks[r * width + c] % len(pools[c])] for c in range(width)] for r in range(n)]
    if draw(st.booleans()):   # past the sample, every cell of the first column its own
        for r in range(64, n):
            rows[r][0] = f"顾客{r}"
    return rows


@settings(max_examples=150, deadline=None)
@given(_few_values(), st.booleans())
def test_a_column_of_a_few_values_writes_what_row_by_row_writes(rows: list[list], pad: bool) -> None:
    cells = Cells([None, 7, None, 8, None], {"datetime": 5, "date": 6})
    assert cells.many(rows, pad=pad) == [cells.xml(r, pad=pad) for r in rows]


def test_a_moments_serial_is_written_as_repr_writes_its_float() -> None:
    # the fraction digits of a time of day are reused for every day of 1989-2079: checked for
    # every second of a day at both ends of that span, in it, and on the days just outside it
    epoch = datetime(1899, 12, 30)
    for day in (32767, 32768, 45000, 46023, 65535, 65536):
        start = epoch + timedelta(days=day)
        for second in range(86_400):
            moment = start + timedelta(seconds=second)
            assert _serial_text(moment) == repr(day + second / 86400), moment
    for moment in (datetime(2026, 10, 1, 9, 30, 5, 250_000), datetime(1900, 3, 1), datetime(9999, 12, 31, 23, 59, 59)):
        d = moment - epoch
        assert _serial_text(moment) == repr(d.days + (d.seconds + d.microseconds / 1e6) / 86400)


def test_libreoffice_reads_the_streamed_sheet(tmp_path: Path, soffice_opens) -> None:
    rows = [[f"顾客{i}说：=SUM(A1)", datetime(2026, 10, 1, 9, i % 60), i * 1.5, i, "备注"] for i in range(500)]
    out = tmp_path / "m.xlsx"
    write_workbook(out, [SheetData("汇总", blocks=[], as_table=False, note="说明"),
                         SheetData("全部投诉", COLUMNS, rows, note="所有门店的投诉")])
    text = soffice_opens(out, sheet=2)
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[1] == [c.header for c in COLUMNS]
    assert lines[2][0] == "顾客0说：=SUM(A1)" and lines[2][1].startswith("2026-10-01 09:00")
    assert lines[-1][0] == "顾客499说：=SUM(A1)" and lines[-1][3] == "499"
    assert len(lines) == 502
