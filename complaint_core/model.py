"""Plain data types shared by the reader, the rules, the add-in, the daemon and the scheduler."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, final

if TYPE_CHECKING:
    from .settings import Settings

Severity = Literal["error", "warning"]


@final
@dataclass(frozen=True, slots=True)
class Invalid:
    """A cell whose text could not be turned into the field's type (kept verbatim, never dropped).

    Final: the checks look for it by exact type (``validate_row``), in one pass over a row.

    ``code`` is a stable finding code such as ``bad_datetime``; the validator reports it.
    """

    raw: Any
    code: str


@dataclass(slots=True)
class SourceRow:
    """One row of a shop's complaint table: what it means (``values``) and what was typed.

    What was typed stays in the row as read from the sheet, indexed by a column map that
    every row of the table shares, rather than in a second dict per row: building that dict
    was a third of the reader's own work on each row. ``raw`` builds it on request.
    """

    row: int                      # Excel row number (1-based) in the source sheet
    values: dict[str, Any]        # field key -> normalised value (None when empty, Invalid when bad)
    extras: dict[str, Any] = field(default_factory=dict)  # header text -> value, for extra columns
    cells: Sequence[Any] = ()     # the sheet's row as read
    cell_index: dict[str, int] = field(default_factory=dict)  # field key -> position in cells

    def typed(self, key: str) -> Any:
        """The cell of field ``key`` exactly as read (None when blank or not a column)."""
        at = self.cell_index.get(key)
        v = self.cells[at] if at is not None and at < len(self.cells) else None
        return None if is_blank(v) else v

    @property
    def raw(self) -> dict[str, Any]:
        """Field key -> cell value as read, for every cell that is not blank."""
        return {k: v for k in self.cell_index if (v := self.typed(k)) is not None}


def is_blank(v: Any) -> bool:
    """Whether a cell is empty to the shop: Excel's None or "", or only spaces."""
    return v is None or (type(v) is str and not v.strip())


@dataclass(slots=True)
class ComplaintTable:
    path: Path | None             # None when the grid came from Excel through the add-in
    sheet: str
    header_row: int               # Excel row number of the header
    first_col: int                # 0-based column index of the table's first column in the sheet
    columns: dict[str, int]       # field key -> 0-based column index in the sheet
    extra_columns: dict[str, int]  # header text -> 0-based column index in the sheet
    rows: list[SourceRow]
    shop_code: str | None = None  # from the settings area, when present
    date1904: bool = False
    last_row: int = 0             # last Excel row of the table region (including blanks inside)
    settings: Settings | None = None   # the workbook's own 设置, if any
    risk_words: tuple[str, ...] | None = None  # the 处理手册 sheet's escalation words, if any
    # (sheet, A1 cell, value) of cells far outside any table, not read (see safety.bound_sheets)
    stray_cells: list[tuple[str, str, str]] = field(default_factory=list)

    def cell(self, key: str, row: int) -> str:
        """A1 reference of field ``key`` on Excel row ``row`` (column added when missing)."""
        col = self.columns.get(key)
        if col is None:
            return ""
        return f"{column_letter(col)}{row}"


@dataclass(frozen=True, slots=True)
class Finding:
    sheet: str
    row: int
    cell: str
    field: str
    severity: Severity
    code: str
    message: str                  # in the language asked for (Chinese by default)

    def as_json(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet, "row": self.row, "cell": self.cell, "field": self.field,
            "severity": self.severity, "code": self.code, "message": self.message,
        }


@dataclass(slots=True)
class RowFill:
    """What the suggestion engine would write into one row: only cells that are empty now."""

    row: int                      # Excel row number
    values: dict[str, Any]        # field key -> value to write


@functools.lru_cache(maxsize=1024)
def column_letter(index: int) -> str:
    """Excel's letters for the 0-based column ``index`` (0 -> A, 26 -> AA).

    Written out here rather than borrowed from openpyxl: the reader's child process would pay
    openpyxl's import (a quarter of a second, more than reading a shop's file) on every file.
    """
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
