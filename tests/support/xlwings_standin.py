"""An xlwings stand-in over a real xlsx file, as Excel for Windows, Excel for Mac or WPS answers.

Excel cannot run on Linux, so the real adapter (``excel_addin.xlwings_port.XlwingsPort``)
is driven through this: the same object model it uses from xlwings (``Book``, ``sheets``,
``used_range``, ``range(...).options(ndim=2).value``, ``resize``, ``number_format``,
``clear``, ``visible``, ``app.selection/alert/properties/version/path``), backed by
openpyxl, counting each round trip to Excel. ``.api`` is where the platforms differ:

- ``platform="windows"``: a COM-like object that answers any name (and records it);
- ``platform="mac"``: an AppleScript-like reference that has none of the COM names and raises
  ``AttributeError("Unknown property, element or command: ...")`` as appscript does.

``unsupported`` names xlwings features that fail on this "machine" (``"visible"``,
``"selection"``, ``"properties"``), to check that the add-in skips them with a line.
Values follow xlwings: numbers come back as float, empty cells as None; a written string
starting with ``'`` is stored as text without it, one starting with ``=`` becomes a formula
(as when typed into Excel), which is what the add-in must prevent for customer text.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter, range_boundaries
from xlwings.utils import VersionNumber

WINDOWS = {"version": "16.0", "path": r"C:\Program Files\Microsoft Office\root\Office16"}
MAC = {"version": "16.89", "path": "/Applications/Microsoft Excel.app"}
WPS = {"version": "11.1.0.10116", "path": r"C:\Users\店长\AppData\Local\Kingsoft\WPS Office\11.1.0.10116\office6"}
APP_STATE_KEYS = {"screen_updating", "calculation", "enable_events", "display_alerts", "interactive"}


class MacReference:
    """What ``.api`` is on a Mac: an appscript reference, with none of Excel's COM names."""

    def __init__(self, standin: XlwingsStandin, what: str) -> None:
        self._standin, self._what = standin, what

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._standin.api_used.append(f"{self._what}.{name}")
        raise AttributeError(f"Unknown property, element or command: {name!r}")


class ComObject:
    """What ``.api`` is on Windows: answers any name (recorded, so a test sees it was used)."""

    def __init__(self, standin: XlwingsStandin, what: str) -> None:
        self._standin, self._what = standin, what

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._standin.api_used.append(f"{self._what}.{name}")
        return ComObject(self._standin, f"{self._what}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return ComObject(self._standin, f"{self._what}()")


class XlwingsStandin:
    def __init__(self, path: str | Path, *, platform: str = "windows", app: dict[str, str] | None = None,
                 selection: tuple[str, int, int] | None = None, unsupported: set[str] | frozenset[str] = frozenset()
                 ) -> None:
        self.path = Path(path)
        self.wb = load_workbook(self.path)
        self.platform = platform
        self.identity = app or (MAC if platform == "mac" else WINDOWS)
        self.unsupported = set(unsupported)
        self.calls: Counter[str] = Counter()
        self.api_used: list[str] = []
        self.alerts: list[str] = []
        self.app_states: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {"screen_updating": True, "calculation": "automatic", "enable_events": True,
                                      "display_alerts": True}
        self._selection = selection   # (sheet, first row, row count)
        self.app = App(self)
        self.book = Book(self)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def call(self, what: str) -> None:
        if what in self.unsupported:
            # what xlwings does on a Mac for a Windows-only member: the attribute is not there
            raise AttributeError(f"{what} is not available on this platform (stand-in)")
        self.calls[what] += 1

    def api(self, what: str) -> Any:
        return MacReference(self, what) if self.platform == "mac" else ComObject(self, what)

    def save(self) -> Path:
        self.wb.save(self.path)
        return self.path


class App:
    def __init__(self, s: XlwingsStandin) -> None:
        self._s = s

    @property
    def api(self) -> Any:
        return self._s.api("app")

    @property
    def version(self) -> VersionNumber:
        self._s.call("version")
        return VersionNumber(self._s.identity["version"])

    @property
    def path(self) -> str:
        self._s.call("path")
        return self._s.identity["path"]

    @property
    def selection(self) -> Range | None:
        self._s.call("selection")
        if self._s._selection is None:
            return None
        sheet, row, count = self._s._selection
        return Range(Sheet(self._s, sheet), row, 1, count, 1)

    def alert(self, prompt: str, title: str | None = None, buttons: str = "ok", mode: Any = None,
              callback: Any = None) -> None:
        self._s.call("alert")
        self._s.alerts.append(prompt)

    @contextmanager
    def properties(self, **kwargs: Any):
        self._s.call("properties")
        unknown = set(kwargs) - APP_STATE_KEYS
        if unknown:
            raise AttributeError(f"App has no property {sorted(unknown)}")
        saved = dict(self._s.state)
        self._s.state.update(kwargs)
        self._s.app_states.append(dict(self._s.state))
        try:
            yield self
        finally:
            self._s.state = saved


class Book:
    def __init__(self, s: XlwingsStandin) -> None:
        self._s = s
        self.app = s.app
        self.sheets = Sheets(s)

    @property
    def name(self) -> str:
        self._s.call("book.name")
        return self._s.path.name

    @property
    def api(self) -> Any:
        return self._s.api("book")


class Sheets:
    def __init__(self, s: XlwingsStandin) -> None:
        self._s = s

    def __iter__(self):
        self._s.call("sheets")
        return iter([Sheet(self._s, n) for n in self._s.wb.sheetnames])

    def __len__(self) -> int:
        return len(self._s.wb.sheetnames)

    def __getitem__(self, key: str | int) -> Sheet:
        names = self._s.wb.sheetnames
        name = names[key] if isinstance(key, int) else key
        if name not in names:
            raise KeyError(name)
        return Sheet(self._s, name)

    def add(self, name: str | None = None, before: Sheet | None = None, after: Sheet | None = None) -> Sheet:
        self._s.call("sheets.add")
        ws = self._s.wb.create_sheet(name)
        if after is not None:
            self._s.wb.move_sheet(ws, offset=self._s.wb.sheetnames.index(after.name) + 1
                                  - self._s.wb.sheetnames.index(ws.title))
        return Sheet(self._s, ws.title)


class Sheet:
    def __init__(self, s: XlwingsStandin, name: str) -> None:
        self._s, self.name = s, name

    @property
    def _ws(self) -> Any:
        return self._s.wb[self.name]

    @property
    def api(self) -> Any:
        return self._s.api(f"sheet[{self.name}]")

    @property
    def used_range(self) -> Range:
        self._s.call("used_range")
        ws = self._ws
        if ws.max_row == 1 and ws.max_column == 1 and ws["A1"].value is None:
            return Range(self, 1, 1, 1, 1)
        return Range(self, ws.min_row, ws.min_column, ws.max_row - ws.min_row + 1, ws.max_column - ws.min_column + 1)

    def range(self, cell: str | tuple[int, int]) -> Range:
        if isinstance(cell, tuple):
            return Range(self, cell[0], cell[1], 1, 1)
        c1, r1, c2, r2 = range_boundaries(cell)
        return Range(self, r1, c1, (r2 or r1) - r1 + 1, (c2 or c1) - c1 + 1)

    def clear(self) -> None:
        self._s.call("sheet.clear")
        ws = self._ws
        for row in ws.iter_rows():
            for cell in row:
                cell.value = None

    @property
    def visible(self) -> bool:
        return self._ws.sheet_state == "visible"

    @visible.setter
    def visible(self, value: bool) -> None:
        self._s.call("visible")
        self._ws.sheet_state = "visible" if value else "hidden"


class _Rows:
    def __init__(self, count: int) -> None:
        self.count = count


class Range:
    def __init__(self, sheet: Sheet, row: int, column: int, nrows: int, ncols: int) -> None:
        self.sheet, self.row, self.column = sheet, row, column
        self.shape = (nrows, ncols)
        self._ndim: int | None = None

    @property
    def rows(self) -> _Rows:
        return _Rows(self.shape[0])

    @property
    def address(self) -> str:
        return (f"${get_column_letter(self.column)}${self.row}:"
                f"${get_column_letter(self.column + self.shape[1] - 1)}${self.row + self.shape[0] - 1}")

    @property
    def api(self) -> Any:
        return self.sheet._s.api(f"range[{self.address}]")

    def options(self, ndim: int | None = None, **_kw: Any) -> Range:
        out = Range(self.sheet, self.row, self.column, *self.shape)
        out._ndim = ndim
        return out

    def resize(self, row_size: int | None = None, column_size: int | None = None) -> Range:
        return Range(self.sheet, self.row, self.column, row_size or self.shape[0], column_size or self.shape[1])

    @property
    def number_format(self) -> str:
        return self.sheet._ws.cell(self.row, self.column).number_format

    @number_format.setter
    def number_format(self, fmt: str) -> None:
        self.sheet._s.call("number_format")
        ws = self.sheet._ws
        for r in range(self.row, self.row + self.shape[0]):
            for c in range(self.column, self.column + self.shape[1]):
                ws.cell(r, c).number_format = fmt

    @property
    def value(self) -> Any:
        self.sheet._s.call("value.get")
        ws = self.sheet._ws
        grid = []
        for row in ws.iter_rows(min_row=self.row, max_row=self.row + self.shape[0] - 1, min_col=self.column,
                                max_col=self.column + self.shape[1] - 1, values_only=True):
            grid.append([float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in row])
        if self._ndim == 2:
            return grid
        if self.shape == (1, 1):
            return grid[0][0]
        return grid[0] if self.shape[0] == 1 else [r[0] for r in grid] if self.shape[1] == 1 else grid

    @value.setter
    def value(self, data: Any) -> None:
        self.sheet._s.call("value.set")
        ws = self.sheet._ws
        rows = data if isinstance(data, list) and data and isinstance(data[0], list) else [[data]]
        for i, line in enumerate(rows):
            for j, v in enumerate(line):
                cell = ws.cell(self.row + i, self.column + j)
                if isinstance(v, str) and v.startswith("'"):
                    cell.value = v[1:]      # Excel's quote prefix: the rest is text, never a formula
                    cell.data_type = "s"
                elif isinstance(v, str) and v.startswith("="):
                    cell.value = v          # typed in Excel, this is a formula
                elif isinstance(v, datetime | int | float | str) or v is None:
                    cell.value = v
                else:
                    raise TypeError(f"xlwings cannot write {type(v).__name__}")
