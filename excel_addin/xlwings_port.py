"""The real Excel adapter: a thin layer of whole-range xlwings calls (open-source xlwings only).

Nothing here loops over cells. It cannot run without Excel, so everything it calls is
tested through ``MemoryPort``, which has the same methods and counts the calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from complaint_core.textsafe import is_dangerous

from .port import QUIET_APP_STATE

RED, YELLOW = 0x9999FF, 0x99E6FF  # BGR, as Excel's Interior.Color wants it


def _safe(values: list[list[Any]]) -> list[list[Any]]:
    # A value written through COM is parsed like typed input: '=...' would become a formula.
    return [["'" + v if is_dangerous(v) else v for v in row] for row in values]


class XlwingsPort:
    def __init__(self, book: Any) -> None:
        self.book = book

    def sheet_names(self) -> list[str]:
        return [s.name for s in self.book.sheets]

    def read_used_range(self, sheet: str) -> tuple[list[list[Any]], int, int]:
        rng = self.book.sheets[sheet].used_range
        values = rng.options(ndim=2).value
        return values, rng.row, rng.column - 1

    def write_block(self, sheet: str, row: int, col: int, values: list[list[Any]],
                    number_format: str | None = None) -> None:
        if not values:
            return
        rng = self.book.sheets[sheet].range((row, col + 1)).resize(len(values), len(values[0]))
        if number_format:
            rng.number_format = number_format
        rng.options(ndim=2).value = _safe(values)

    def replace_sheet(self, sheet: str, values: list[list[Any]], *, hidden: bool = False) -> None:
        names = self.sheet_names()
        if sheet in names:
            sht = self.book.sheets[sheet]
            sht.clear()
        else:
            sht = self.book.sheets.add(sheet, after=self.book.sheets[len(names) - 1])
        if values:
            sht.range("A1").options(ndim=2).value = _safe(values)
        if hidden:
            sht.visible = False

    def set_mark_rules(self, sheet: str, area: str, marks_sheet: str) -> None:
        rng = self.book.sheets[sheet].range(area)
        top_left = area.split(":")[0]
        conditions = rng.api.FormatConditions
        conditions.Delete()  # our rules only live on this marks area; re-added below
        for level, colour in ((2, RED), (1, YELLOW)):
            rule = conditions.Add(2, None, f"='{marks_sheet}'!{top_left}={level}")  # 2 = xlExpression
            rule.Interior.Color = colour

    def selected_rows(self, sheet: str) -> list[int]:
        sel = self.book.app.selection
        if sel is None or sel.sheet.name != sheet:
            return []
        return list(range(sel.row, sel.row + sel.rows.count))

    def alert(self, message: str, title: str = "投诉台账") -> None:
        self.book.app.alert(message, title=title)

    @contextmanager
    def quiet(self) -> Iterator[None]:
        with self.book.app.properties(**QUIET_APP_STATE):
            yield

    def now(self) -> datetime:
        return datetime.now().replace(microsecond=0)
