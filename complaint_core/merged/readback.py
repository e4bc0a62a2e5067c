"""Read the columns managers own back from the current merged workbook.

Managers type into the merged workbook (主管批示, 处罚确认…); the daemon rewrites that file,
so before each rewrite it reads those cells back, keyed by the row's key columns, and keeps them.
A file the manager is saving this very second may be briefly unreadable: we retry.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .model import SheetData


def _cell_text(value: Any) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    return value


def _key_text(value: Any) -> str:
    v = _cell_text(value)
    return "" if v is None else str(v)


def read_manager_edits(path: Path, sheets: list[SheetData], *, attempts: int = 5,
                       delay: float = 0.2) -> dict[str, dict[tuple, dict[str, Any]]]:
    """sheet name -> {key tuple -> {column key -> value}} for every manager-owned column."""
    wanted = [s for s in sheets if s.key_columns and any(c.manager_owned for c in s.columns)]
    if not wanted or not path.exists():
        return {}
    from python_calamine import CalamineWorkbook

    last: Exception | None = None
    for attempt in range(attempts):
        try:
            wb = CalamineWorkbook.from_path(str(path))
            names = set(wb.sheet_names)
            out: dict[str, dict[tuple, dict[str, Any]]] = {}
            for sheet in wanted:
                if sheet.name in names:
                    out[sheet.name] = _read_sheet(wb.get_sheet_by_name(sheet.name).to_python(), sheet)
            return out
        except Exception as exc:  # noqa: BLE001 - a half-saved file: try again shortly
            last = exc
            time.sleep(delay * (attempt + 1))
    raise OSError(f"{path}: 合并工作簿暂时无法读取，主管批示未能读回 ({last})")


def _read_sheet(grid: list[list[Any]], sheet: SheetData) -> dict[tuple, dict[str, Any]]:
    headers = {c.header: c.key for c in sheet.columns}
    for h_row, cells in enumerate(grid[:5]):  # noqa: B007 - the header row is used below
        index = {headers[str(v)]: i for i, v in enumerate(cells) if str(v) in headers}
        if all(k in index for k in sheet.key_columns):
            break
    else:
        return {}
    owned = [c.key for c in sheet.columns if c.manager_owned and c.key in index]
    out: dict[tuple, dict[str, Any]] = {}
    for cells in grid[h_row + 1:]:
        def get(k: str, cells: list[Any] = cells) -> Any:
            i = index[k]
            return cells[i] if i < len(cells) else None

        key = tuple(_key_text(get(k)) for k in sheet.key_columns)
        if not any(key):
            continue
        out[key] = {k: _cell_text(get(k)) for k in owned}
    return out
