"""The merged workbook as a manager sees it: read a sheet as dicts, type into a cell and save.

Typing goes through openpyxl and a real save, as Excel would leave the file; reading goes
through calamine, as the daemon reads it back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
from python_calamine import CalamineWorkbook

__all__ = ["grid", "rows_of", "type_into"]


def grid(path: Path, sheet: str) -> list[list[Any]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def _header_index(cells: list[list[Any]], wanted: str) -> int:
    # the table's header is the first row that has the wanted column (row 1 holds a note)
    return next(i for i, row in enumerate(cells[:5]) if wanted in [str(v) for v in row])


def rows_of(path: Path, sheet: str, *, key: str = "门店") -> list[dict[str, Any]]:
    g = grid(path, sheet)
    h = _header_index(g, key)
    head = [str(v) for v in g[h]]
    return [dict(zip(head, r, strict=False)) for r in g[h + 1:] if any(v not in ("", None) for v in r)]


def type_into(path: Path, sheet: str, match: Callable[[dict[str, Any]], bool], column: str, value: Any,
              *, key: str = "门店") -> int:
    """Type ``value`` into ``column`` of every row of ``sheet`` that ``match`` accepts; returns how
    many rows were typed into."""
    wb = openpyxl.load_workbook(path)
    ws = wb[sheet]
    rows = [[c.value for c in r] for r in ws.iter_rows(max_row=5)]
    h = _header_index(rows, key)
    head = [str(c.value) for c in ws[h + 1]]
    col = head.index(column) + 1
    typed = 0
    for r in ws.iter_rows(min_row=h + 2):
        values = dict(zip(head, [c.value for c in r], strict=False))
        if any(v not in (None, "") for v in values.values()) and match(values):
            ws.cell(row=r[0].row, column=col).value = value
            typed += 1
    wb.save(path)
    later = time.time() + 2   # a manager's save is later than the daemon's write
    os.utime(path, (later, later))
    return typed
