"""Write validation marks and suggestions into a shop's own workbook (CLI ``--mark``/``suggest``).

openpyxl keeps the template's table, data validations and conditional formats; the file
is saved atomically so Excel or a sync client never sees half of it. Marks carry our own
fill colour and comment author, so the next run can clear the ones that are fixed without
touching anything a person coloured or commented.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.table import TableColumn

from .atomic import atomic_write, refuse_read_only
from .findings import FINDINGS_HEADER, FINDINGS_HEADER_EN
from .model import ComplaintTable, Finding, RowFill, column_letter
from .safety import check_xlsx
from .schema import FIELD_BY_KEY, FILLED_KEYS, KEYS, SHEET_FINDINGS
from .template import number_format
from .textsafe import clean_control

AUTHOR = "投诉台账"
ERROR_FILL = PatternFill("solid", fgColor="FFFF9999")
WARNING_FILL = PatternFill("solid", fgColor="FFFFE699")
_OUR_COLOURS = {"FFFF9999", "FFFFE699"}


def _load(path: Path) -> Any:
    """The shop's workbook for editing, or one line saying why it cannot be edited.

    openpyxl edits only xlsx/xlsm (by content: an .et or .XLSX that is an xlsx inside is
    fine); a read-only file is the shop's way of saying "do not touch", so it is refused
    before any work, and the rewrite keeps the file's owner, group and mode (atomic_write).
    """
    facts = check_xlsx(path)
    refuse_read_only(path)
    with path.open("rb") as fh:   # a file object: openpyxl would refuse an .et or .XLSX name
        return load_workbook(fh, keep_vba="xl/vbaProject.bin" in facts.parts, rich_text=True)


def _set_text(cell: Any, value: Any) -> None:
    """Store customer-facing text as a string even when it starts with '=' (never a formula)."""
    if isinstance(value, str):
        cell.value = clean_control(value)
        cell.data_type = "s"
    else:
        cell.value = value


def _write_findings_sheet(wb: Any, findings: list[Finding], lang: str) -> None:
    if SHEET_FINDINGS in wb.sheetnames:
        del wb[SHEET_FINDINGS]
    ws = wb.create_sheet(SHEET_FINDINGS)
    ws.append(list(FINDINGS_HEADER if lang == "zh" else FINDINGS_HEADER_EN))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for f in findings:
        ws.append([None] * 7)
        r = ws.max_row
        for c, value in enumerate((f.sheet, f.row, f.cell, FIELD_BY_KEY[f.field].zh if f.field in FIELD_BY_KEY
                                   else f.field, f.severity, f.code, f.message), start=1):
            _set_text(ws.cell(row=r, column=c), value)
    for col, width in zip("ABCDEFG", (12, 6, 8, 14, 8, 22, 70), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A2"


def mark_file(path: str | Path, findings: Iterable[Finding], *, sheet: str | Iterable[str],
              lang: str = "zh") -> None:
    """Fill + note on each bad cell of ``sheet`` (one name, or every sheet holding a complaint
    table), clear last run's fixed marks, list findings."""
    p = Path(path)
    findings = list(findings)
    sheets = list(dict.fromkeys([sheet] if isinstance(sheet, str) else sheet))
    wb = _load(p)
    for name in sheets:
        _mark_sheet(wb[name], [f for f in findings if f.sheet == name and f.code != "stray_cell"])
    _write_findings_sheet(wb, findings, lang)
    with atomic_write(p) as tmp:
        wb.save(tmp)


def _mark_sheet(ws: Any, findings: list[Finding]) -> None:
    for row in ws.iter_rows():
        for cell in row:
            if cell.comment is not None and cell.comment.author == AUTHOR:
                cell.comment = None
                if cell.fill is not None and cell.fill.fgColor is not None and cell.fill.fgColor.rgb in _OUR_COLOURS:
                    cell.fill = PatternFill(fill_type=None)
    by_cell: dict[str, list[Finding]] = {}
    for f in findings:
        if f.cell:
            by_cell.setdefault(f.cell, []).append(f)
    for ref, items in by_cell.items():
        cell = ws[ref]
        worst = "error" if any(f.severity == "error" for f in items) else "warning"
        cell.fill = ERROR_FILL if worst == "error" else WARNING_FILL
        text = "\n".join(f"[{f.code}] {f.message}" for f in items)
        cell.comment = Comment(text[:2000], AUTHOR, width=300, height=120)


def fill_file(path: str | Path, table: ComplaintTable, fills: Iterable[RowFill]) -> int:
    """Write suggestion/deadline/id values into empty cells, adding missing columns; returns cells written."""
    p = Path(path)
    fills = list(fills)
    wb = _load(p)
    ws = wb[table.sheet]
    columns = dict(table.columns)
    # The suggestion and deadline columns are added together, in schema order, when missing.
    wanted = set(FILLED_KEYS) | {k for f in fills for k in f.values}
    needed = [k for k in KEYS if k in wanted and k not in columns]
    if needed:
        next_col = max(list(columns.values()) + list(table.extra_columns.values())) + 1
        tbl = _table_at(ws, table.header_row)
        for key in needed:
            columns[key] = next_col
            header = FIELD_BY_KEY[key].zh
            cell = ws.cell(row=table.header_row, column=next_col + 1)
            _set_text(cell, header)
            ws.column_dimensions[column_letter(next_col)].width = FIELD_BY_KEY[key].width
            if tbl is not None:
                tbl.tableColumns.append(TableColumn(id=len(tbl.tableColumns) + 1, name=header))
            next_col += 1
        if tbl is not None:
            start, end = tbl.ref.split(":")
            end_row = int("".join(ch for ch in end if ch.isdigit()))
            tbl.ref = f"{start}:{column_letter(next_col - 1)}{end_row}"
            if tbl.autoFilter is not None:
                tbl.autoFilter.ref = tbl.ref
    written = 0
    for fill in fills:
        for key, value in fill.values.items():
            cell = ws.cell(row=fill.row, column=columns[key] + 1)
            if cell.value not in (None, ""):
                continue  # never overwrite what a person typed
            _set_text(cell, value)
            if isinstance(value, datetime):
                cell.number_format = number_format("datetime")
            if key == "suggested_steps":
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            written += 1
    with atomic_write(p) as tmp:
        wb.save(tmp)
    return written


def _table_at(ws: Any, header_row: int) -> Any:
    for tbl in ws.tables.values():
        start = tbl.ref.split(":")[0]
        if int("".join(ch for ch in start if ch.isdigit())) == header_row:
            return tbl
    return None
