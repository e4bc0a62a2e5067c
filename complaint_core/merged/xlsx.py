"""Write SheetData to xlsx with XlsxWriter: customer text stays text, never a formula or link."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from .model import Block, ChartSpec, Column, SheetData

LISTS_SHEET = "_lists"
EXCEL_MAX_ROWS = 1_048_576
log = logging.getLogger(__name__)


def _formats(wb: Any) -> dict[str, Any]:
    return {
        "datetime": wb.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
        "date": wb.add_format({"num_format": "yyyy-mm-dd"}),
        "money": wb.add_format({"num_format": "#,##0.00"}),
        "int": wb.add_format({"num_format": "0"}),
        "float": wb.add_format({"num_format": "0.00"}),
        "percent": wb.add_format({"num_format": "0.0%"}),
        "head": wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1}),
        "title": wb.add_format({"bold": True, "font_size": 12}),
        "note": wb.add_format({"italic": True, "font_color": "#666666"}),
    }


def _write_cell(ws: Any, r: int, c: int, value: Any, col: Column, fmt: dict[str, Any]) -> None:
    if value is None or value == "":
        return
    if isinstance(value, datetime):
        ws.write_datetime(r, c, value, fmt["datetime"])
    elif isinstance(value, date):
        ws.write_datetime(r, c, datetime(value.year, value.month, value.day), fmt["date"])
    elif isinstance(value, bool):
        ws.write_boolean(r, c, value)
    elif isinstance(value, int | float):
        ws.write_number(r, c, value, fmt.get(col.kind))
    else:
        # write_string: never a formula, never a hyperlink, whatever the customer typed
        ws.write_string(r, c, str(value))


def _chart(wb: Any, ws: Any, name: str, spec: ChartSpec, first_row: int, n_cols: int) -> None:
    chart = wb.add_chart({"type": spec.kind})
    r0, r1 = first_row + spec.first_row, first_row + spec.last_row
    for i, col in enumerate(spec.values_cols):
        chart.add_series({
            "name": spec.series_names[i] if i < len(spec.series_names) else None,
            "categories": [name, r0, spec.categories_col, r1, spec.categories_col],
            "values": [name, r0, col, r1, col],
        } if i < len(spec.series_names) else {
            "categories": [name, r0, spec.categories_col, r1, spec.categories_col],
            "values": [name, r0, col, r1, col],
        })
    chart.set_title({"name": spec.title})
    ws.insert_chart(spec.anchor, chart)


def _write_blocks(wb: Any, ws: Any, sheet: SheetData, fmt: dict[str, Any]) -> None:
    r = 0
    if sheet.note:
        ws.write_string(r, 0, sheet.note, fmt["note"])
        r += 2
    for block in sheet.blocks:
        r = _write_block(wb, ws, sheet.name, block, r, fmt) + 2


def _write_block(wb: Any, ws: Any, name: str, block: Block, r: int, fmt: dict[str, Any]) -> int:
    ws.write_string(r, 0, block.title, fmt["title"])
    r += 1
    for c, col in enumerate(block.columns):
        ws.write_string(r, c, col.header, fmt["head"])
        ws.set_column(c, c, col.width)
    first = r + 1
    for i, row in enumerate(block.rows):
        for c, col in enumerate(block.columns):
            _write_cell(ws, first + i, c, row[c] if c < len(row) else None, col, fmt)
    for spec in block.charts:
        _chart(wb, ws, name, spec, first, len(block.columns))
    if block.note:
        ws.write_string(first + len(block.rows), 0, block.note, fmt["note"])
    return first + len(block.rows)


def _write_table(wb: Any, ws: Any, sheet: SheetData, fmt: dict[str, Any],
                 lists: list[tuple[str, ...]]) -> None:
    top = 0
    if sheet.note:
        ws.write_string(0, 0, sheet.note, fmt["note"])
        top = 1
    for c, col in enumerate(sheet.columns):
        ws.set_column(c, c, col.width, fmt.get(col.kind) if col.kind != "text" else None)
        ws.write_string(top, c, col.header, fmt["head"])
    rows = sheet.rows
    # Excel stops at 1,048,576 rows; XlsxWriter would drop the rest without a word. Write what
    # fits and say on the last row how many complaints are only in the store.
    capacity = EXCEL_MAX_ROWS - (top + 1) - 1
    overflow = len(rows) - capacity if len(rows) > capacity else 0
    if overflow:
        rows = rows[:capacity]
        log.warning("%s: %d rows exceed Excel's row limit and are not in the workbook", sheet.name, overflow)
    for i, row in enumerate(rows):
        for c, col in enumerate(sheet.columns):
            _write_cell(ws, top + 1 + i, c, row[c] if c < len(row) else None, col, fmt)
    if overflow:
        ws.write_string(top + 1 + len(rows), 0, f"另有 {overflow} 条记录超出 Excel 的 1,048,576 行上限，未写入本表，"
                        f"仍保存在数据库中 ({overflow} more rows exceed Excel's row limit; they are in the store)",
                        fmt["note"])
    last = top + max(len(rows), 1)
    ncols = len(sheet.columns)
    if sheet.as_table and ncols:
        ws.autofilter(top, 0, last, ncols - 1)
    if sheet.freeze_header:
        ws.freeze_panes(top + 1, 0)
    for c, col in enumerate(sheet.columns):
        if not col.choices:
            continue
        lc = len(lists)
        lists.append(col.choices)
        letter = xl_col_to_name(lc)
        ws.data_validation(top + 1, c, max(last, top + 1000), c, {
            "validate": "list", "source": f"={LISTS_SHEET}!${letter}$1:${letter}${len(col.choices)}",
            "ignore_blank": True, "error_type": "warning"})
    for spec in sheet.charts:
        _chart(wb, ws, sheet.name, spec, top + 1, ncols)


def write_workbook(path: Path, sheets: list[SheetData]) -> None:
    # constant_memory streams each row to disk: a 100k-row merge stays small in memory.
    wb = xlsxwriter.Workbook(str(path), {
        "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
        "constant_memory": True})
    fmt = _formats(wb)
    worksheets = [(wb.add_worksheet(s.name), s) for s in sheets]
    lists: list[tuple[str, ...]] = []
    for ws, sheet in worksheets:
        if sheet.blocks:
            _write_blocks(wb, ws, sheet, fmt)
        else:
            _write_table(wb, ws, sheet, fmt, lists)
    # dropdown lists live on a hidden sheet, written row by row (constant_memory streams rows)
    hidden = wb.add_worksheet(LISTS_SHEET)
    hidden.hide()
    for r in range(max((len(x) for x in lists), default=0)):
        for c, choices in enumerate(lists):
            if r < len(choices):
                hidden.write_string(r, c, choices[r])
    wb.close()
