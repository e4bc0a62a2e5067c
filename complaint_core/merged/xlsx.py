"""Write SheetData to xlsx with XlsxWriter: customer text stays text, never a formula or link.

Only XlsxWriter's public API is called here; what streaming the big sheets' rows assumes
about its output lives in ``xlsxwriter_adapter.py``, checked on every write.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import xlsxwriter

from complaint_core.model import column_letter

from . import xlsxwriter_adapter as adapter
from .deflate import FileSegment, Segment, Spool, compress
from .model import Block, ChartSpec, Column, SheetData
from .rowxml import Cells, row_xml
from .zipout import ZipOut

LISTS_SHEET = "_lists"
EXCEL_MAX_ROWS = 1_048_576
# zlib level 1: the deflate of a 100-shop sheet takes a third of level 6's time for a ~30%
# larger file; the merged workbook is rewritten often and read over a LAN, not mailed.
COMPRESS_LEVEL = 1
# The number formats streamed cells wear, by column kind (the adapter checks styles.xml has them).
NUMBER_FORMATS = {"datetime": "yyyy-mm-dd hh:mm", "date": "yyyy-mm-dd", "money": "#,##0.00", "int": "0",
                  "float": "0.00", "percent": "0.0%"}
log = logging.getLogger(__name__)


def _formats(wb: Any) -> dict[str, Any]:
    return {
        **{kind: wb.add_format({"num_format": code}) for kind, code in NUMBER_FORMATS.items()},
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


def _chart(wb: Any, ws: Any, name: str, spec: ChartSpec, first_row: int) -> None:
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
        _chart(wb, ws, name, spec, first)
    if block.note:
        ws.write_string(first + len(block.rows), 0, block.note, fmt["note"])
    return first + len(block.rows)


TABLE_NAMES = {"全部投诉": "AllComplaints", "逾期": "Overdue", "处罚": "Penalties", "冲突": "Conflicts",
               "校验问题": "Findings", "来源": "Sources"}


class RowCodec:
    """How one table sheet's rows become XML (its columns' number formats): what a shop's piece
    is encoded with, here or in a piece maker's process (merged/makers.py). Plain data, so it
    travels to another process as it is."""

    def __init__(self, columns: list[Column], indexes: dict[str, int]) -> None:
        self.number_styles = [indexes[c.kind] if c.kind in indexes and c.kind not in ("datetime", "date")
                              else None for c in columns]
        self.styles = {k: indexes[k] for k in ("datetime", "date")}
        self.cells = Cells(self.number_styles, self.styles)

    def encode(self, rows: Iterable[list[Any]]) -> Segment:
        """``rows`` as one compressed segment (``RowSpool.add_segment`` lays it)."""
        return compress(row_xml(rows, self.number_styles, self.styles), COMPRESS_LEVEL)


class RowSpool:
    """The data rows of one table sheet, encoded as worksheet XML and compressed into a
    temporary file as they come (``deflate.Spool``), so that a sheet of a million complaints
    is never held in memory (issue 17).

    Rows are written without row numbers (``row_xml``): a shop's rows encoded
    and compressed once (``encode``) can be laid into the next write as they are
    (``add_segment``), wherever the other shops' rows put them. Rows past Excel's 1,048,576
    are counted, not written; ``finish`` adds the line that says how many complaints are only
    in the store.
    """

    def __init__(self, columns: list[Column], first_row: int, indexes: dict[str, int]) -> None:
        self.columns = columns
        self.first_row = first_row          # 0-based sheet row of the first data row
        self.count = 0                      # data rows written
        self.overflow = 0                   # rows past Excel's limit, counted only
        self._capacity = rows_that_fit(first_row)
        self.codec = RowCodec(columns, indexes)
        self.cells = self.codec.cells
        self._rows: list[list[Any]] = []
        self._xml: list[bytes] = []
        self.spool = Spool(level=COMPRESS_LEVEL)
        self._finished = False

    def room(self, rows: int) -> bool:
        """Whether ``rows`` more rows fit under Excel's limit."""
        return self.count + rows <= self._capacity

    def add(self, row: list[Any]) -> None:
        if self.count >= self._capacity:
            self.overflow += 1
            return
        if self._xml:
            self._flush()
        self._rows.append(row)
        self.count += 1
        if len(self._rows) >= 2000:
            self._flush()

    def extend_xml(self, rows: list[bytes]) -> None:
        """Rows already encoded (``<row>…</row>`` without numbers, ``pieces.xml_bytes``), in one
        call (a shop's 逾期 lines, a batch of 案例手册's)."""
        room = max(self._capacity - self.count, 0)
        if len(rows) > room:
            self.overflow += len(rows) - room
            rows = rows[:room]
        if not rows:
            return
        if self._rows:
            self._flush()
        self._xml += rows
        self.count += len(rows)
        if len(self._xml) >= 2000:
            self._flush()

    def extend(self, rows: Iterable[list[Any]]) -> None:
        for row in rows:
            self.add(row)

    def add_segment(self, segment: Segment | FileSegment, rows: int) -> None:
        """Rows ``codec.encode`` made. A segment is never cut: one that does not fit under Excel's
        limit is counted with the rows that are only in the store."""
        if not self.room(rows):
            self.overflow += rows
            return
        self._flush()
        self.spool.add(segment)
        self.count += rows

    def __len__(self) -> int:
        return self.count

    def _flush(self) -> None:
        if self._rows:
            self.spool.add_chunks(row_xml(self._rows, self.codec.number_styles, self.codec.styles))
            self._rows = []
        if self._xml:
            self.spool.add_chunks([b"".join(self._xml)])
            self._xml = []

    def finish(self, sheet: str) -> None:
        """Encode what is pending and, past Excel's limit, the line that says so (once)."""
        if self._finished:
            return
        self._finished = True
        self._flush()
        if self.overflow:
            log.warning("%s: %d rows exceed Excel's row limit and are not in the workbook", sheet, self.overflow)
            line = [f"另有 {self.overflow} 条记录超出 Excel 的 1,048,576 行上限，未写入本表，"
                    f"仍保存在数据库中 ({self.overflow} more rows exceed Excel's row limit; they are in the store)"]
            self.spool.add_chunks(row_xml([line], [None], self.codec.styles))

    @property
    def lines(self) -> int:
        """Sheet rows the data takes: the rows, and the overflow line if there is one."""
        return self.count + (1 if self.overflow else 0)

    def close(self) -> None:
        self.spool.close()


def rows_that_fit(first_row: int) -> int:
    """Data rows a table sheet holds from 0-based sheet row ``first_row`` on: Excel's limit,
    less one row kept for the line that says how many more are only in the store."""
    return EXCEL_MAX_ROWS - first_row - 1


@dataclass(slots=True)
class _Rows:
    """Data rows of one table sheet, streamed into its XML after XlsxWriter wrote the frame."""

    first_row: int                      # 0-based sheet row of the first data row
    spool: RowSpool
    last_ref: str
    table_refs: tuple[str, str] | None = None   # the Excel Table's range: as declared, as written


def first_data_row(sheet: SheetData) -> int:
    """0-based sheet row of a table sheet's first data row: after its note line and header."""
    return 2 if sheet.note else 1


def _write_table(wb: Any, ws: Any, sheet: SheetData, spool: RowSpool, fmt: dict[str, Any],
                 lists: list[tuple[str, ...]], index: int) -> _Rows:
    top = first_data_row(sheet) - 1
    if sheet.note:
        ws.write_string(0, 0, sheet.note, fmt["note"])
    headers = [c.header for c in sheet.columns]
    for c, col in enumerate(sheet.columns):
        ws.set_column(c, c, col.width, fmt.get(col.kind) if col.kind != "text" else None)
    # Excel stops at 1,048,576 rows: the spool wrote what fits and says on its last line how
    # many complaints are only in the store.
    spool.finish(sheet.name)
    last = top + max(spool.count, 1)
    ncols = len(sheet.columns)
    unique = len({h.lower() for h in headers}) == len(headers) and all(headers)
    if sheet.as_table and ncols and unique:
        # A real Excel Table: banded rows, filter buttons, and it grows when a manager adds rows.
        # Declared over one data row: XlsxWriter keeps a dict entry per cell of a table's range
        # (4 million for 100 shops); _assemble stretches the table over every row afterwards.
        end = column_letter(ncols - 1)
        table_refs = (f"A{top + 1}:{end}{top + 2}", f"A{top + 1}:{end}{last + 1}")
        ws.add_table(top, 0, top + 1, ncols - 1, {
            "name": TABLE_NAMES.get(sheet.name, f"Table{index + 1}"), "style": "Table Style Light 9",
            "columns": [{"header": h, "header_format": fmt["head"]} for h in headers]})
    else:
        table_refs = None
        for c, h in enumerate(headers):
            ws.write_string(top, c, h, fmt["head"])
        if sheet.as_table and ncols:
            ws.autofilter(top, 0, last, ncols - 1)
    if sheet.freeze_header:
        ws.freeze_panes(top + 1, 0)
    for c, col in enumerate(sheet.columns):
        if not col.choices:
            continue
        lc = len(lists)
        lists.append(col.choices)
        letter = column_letter(lc)
        ws.data_validation(top + 1, c, max(last, top + 1000), c, {
            "validate": "list", "source": f"={LISTS_SHEET}!${letter}$1:${letter}${len(col.choices)}",
            "ignore_blank": True, "error_type": "warning"})
    for spec in sheet.charts:
        _chart(wb, ws, sheet.name, spec, top + 1)
    end_row = top + spool.lines
    return _Rows(top + 1, spool, f"{column_letter(max(ncols, 1) - 1)}{end_row + 1}", table_refs)


class Book:
    """One merged workbook being written: XlsxWriter's frame, and a spool per big sheet.

    The render fills the spools (``spool``) while it walks the store, then ``write`` puts
    every sheet in the order given. A sheet whose rows are a plain list is spooled here.
    """

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._wb = xlsxwriter.Workbook(self._buf, {
            "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
            "in_memory": True})
        self._fmt = _formats(self._wb)
        adapter.fix_style_indexes(self._fmt.values())
        self.indexes = {kind: adapter.style_index(self._fmt[kind]) for kind in NUMBER_FORMATS}
        self._spools: list[RowSpool] = []

    def spool(self, columns: list[Column], first_row: int) -> RowSpool:
        """An empty spool for a table sheet whose first data row is ``first_row`` (0-based)."""
        spool = RowSpool(columns, first_row, self.indexes)
        self._spools.append(spool)
        return spool

    def write(self, path: Path, sheets: list[SheetData]) -> None:
        try:
            self._write(path, sheets)
        finally:
            for spool in self._spools:
                spool.close()

    def _write(self, path: Path, sheets: list[SheetData]) -> None:
        wb, fmt = self._wb, self._fmt
        worksheets = [(wb.add_worksheet(s.name), s) for s in sheets]
        lists: list[tuple[str, ...]] = []
        streamed: dict[str, _Rows] = {}
        for i, (ws, sheet) in enumerate(worksheets):
            if sheet.hidden:
                ws.hide()
            if sheet.blocks:
                _write_blocks(wb, ws, sheet, fmt)
                continue
            data = sheet.rows
            if isinstance(data, RowSpool):
                spool = data
                if spool.first_row != first_data_row(sheet):
                    raise ValueError(f"{sheet.name}: rows spooled for row {spool.first_row}, "
                                     f"the sheet's first data row is {first_data_row(sheet)}")
            else:
                assert isinstance(data, list), type(data)
                spool = self.spool(sheet.columns, first_data_row(sheet))
                spool.extend(data)
            streamed[sheet.name] = _write_table(wb, ws, sheet, spool, fmt, lists, i)
        # dropdown lists live on a hidden sheet
        hidden = wb.add_worksheet(LISTS_SHEET)
        hidden.hide()
        for c, choices in enumerate(lists):
            hidden.write_column(0, c, list(choices))
        wb.close()
        _assemble(self._buf, path, streamed, self.indexes)


def write_workbook(path: Path, sheets: list[SheetData]) -> None:
    """XlsxWriter writes each sheet's frame in memory; big row sets are streamed into the file."""
    Book().write(path, sheets)


def _assemble(buf: io.BytesIO, path: Path, streamed: dict[str, _Rows], indexes: dict[str, int]) -> None:
    """Copy XlsxWriter's package into ``path``, laying the big sheets' spooled rows into their parts."""
    buf.seek(0)
    with zipfile.ZipFile(buf) as src:
        adapter.check_styles(src.read("xl/styles.xml"), {indexes[k]: code for k, code in NUMBER_FORMATS.items()})
        parts = adapter.sheet_parts(src)
        jobs: dict[str, _Rows] = {}
        tables: dict[str, tuple[str, str]] = {}
        for name, job in streamed.items():
            sheet = parts.get(name)
            if sheet is None:
                raise adapter.WriterShapeChanged(f"sheet {name!r} is not in the workbook part", "xl/workbook.xml")
            jobs[sheet.part] = job
            if job.table_refs is not None:
                if len(sheet.tables) != 1:
                    raise adapter.WriterShapeChanged(f"sheet {name!r} has {len(sheet.tables)} Table parts, "
                                                     "not 1", sheet.part)
                tables[sheet.tables[0]] = job.table_refs
        with ZipOut(path) as out:
            for info in src.infolist():
                data = src.read(info)
                part = jobs.get(info.filename)
                if part is None:
                    if info.filename in tables:
                        data = adapter.stretch_table(data, *tables[info.filename], part=info.filename)
                    out.write(info.filename, data, COMPRESS_LEVEL)
                    continue
                head, tail = adapter.split_sheet(data, f"A1:{part.last_ref}", part.first_row + 1, part=info.filename)
                out.write_parts(info.filename, [head, part.spool.spool, tail], COMPRESS_LEVEL)
