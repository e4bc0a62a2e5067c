"""A ``WorkbookPort`` over an openpyxl workbook that counts every call.

It stands in for Excel in the tests and the benchmark: the same handlers run on it, and
``calls`` shows how many Excel round trips a button press would make.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from .port import NORMAL_APP_STATE, QUIET_APP_STATE


class MemoryPort:
    def __init__(self, path: str | Path, *, now: datetime, selection: list[int] | None = None,
                 app_version: str = "16.0", app_path: str = r"C:\Program Files\Microsoft Office\root\Office16") -> None:
        self.path = Path(path)
        self.app_version, self.app_path = app_version, app_path
        self.wb = load_workbook(self.path)
        self._now = now
        self._selection = selection or []
        self.calls: Counter[str] = Counter()
        self.alerts: list[str] = []
        # Excel's application state as the real adapter toggles it (screen updating etc.).
        self.app_state = dict(NORMAL_APP_STATE)
        self.states_seen: list[dict[str, Any]] = []

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def sheet_names(self) -> list[str]:
        self.calls["sheet_names"] += 1
        return list(self.wb.sheetnames)

    def read_used_range(self, sheet: str) -> tuple[list[list[Any]], int, int]:
        self.calls["read_used_range"] += 1
        ws = self.wb[sheet]
        grid = [list(row) for row in ws.iter_rows(min_row=ws.min_row, min_col=ws.min_column, values_only=True)]
        return grid, ws.min_row, ws.min_column - 1

    def write_block(self, sheet: str, row: int, col: int, values: list[list[Any]],
                    number_format: str | None = None) -> None:
        self.calls["write_block"] += 1
        ws = self.wb[sheet]
        for i, line in enumerate(values):
            for j, value in enumerate(line):
                cell = ws.cell(row=row + i, column=col + j + 1, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"
                if number_format:
                    cell.number_format = number_format

    def replace_sheet(self, sheet: str, values: list[list[Any]], *, hidden: bool = False) -> None:
        self.calls["replace_sheet"] += 1
        if sheet in self.wb.sheetnames:
            del self.wb[sheet]
        ws = self.wb.create_sheet(sheet)
        for line in values:
            ws.append(line)
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str):
                    cell.data_type = "s"
        if hidden:
            ws.sheet_state = "hidden"

    def selected_rows(self, sheet: str) -> list[int]:
        self.calls["selected_rows"] += 1
        return list(self._selection)

    def alert(self, message: str, title: str = "投诉台账") -> None:
        self.calls["alert"] += 1
        self.alerts.append(message)

    @contextmanager
    def quiet(self) -> Iterator[None]:
        # Same contract as xlwings' App.properties: set, run, restore in ``finally``.
        self.calls["quiet"] += 1
        saved = dict(self.app_state)
        self.app_state.update(QUIET_APP_STATE)
        self.states_seen.append(dict(self.app_state))
        try:
            yield
        finally:
            self.app_state = saved

    def now(self) -> datetime:
        return self._now

    def app_identity(self) -> tuple[str, str]:
        self.calls["app_identity"] += 2   # xlwings asks Excel twice: version, then path
        return self.app_version, self.app_path

    def book_name(self) -> str:
        self.calls["book_name"] += 1
        return self.path.name

    def skipped(self) -> list[str]:
        return []   # openpyxl can do everything the port asks

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path or self.path)
        self.wb.save(target)
        return target
