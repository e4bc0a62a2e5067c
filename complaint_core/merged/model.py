"""What one sheet of the merged workbook holds, independent of the writer library.

Every sheet is built from the store and the clock (merged/sheets.py, merged/report.py); the
renderer writes them in the contract order and keeps the columns managers own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

ColumnKind = Literal["text", "datetime", "date", "money", "int", "float", "percent"]

# Contract order of the merged workbook's sheets (docs/contract.md).
# 案例手册 (the case book of resolved complaints, seed 001 模块五) follows 处罚.
SHEET_ORDER = ("汇总", "全部投诉", "逾期", "处罚", "案例手册", "冲突", "校验问题", "来源")


@dataclass(slots=True)
class Column:
    key: str
    header: str
    kind: ColumnKind = "text"
    width: float = 14
    choices: tuple[str, ...] = ()      # dropdown values (written to a hidden list sheet)
    manager_owned: bool = False        # read back from the previous merged workbook and kept


@dataclass(slots=True)
class ChartSpec:
    """A native Excel chart over a block of this sheet's cells (rows are 0-based data rows)."""

    kind: Literal["column", "bar", "pie", "line"]
    title: str
    categories_col: int                # column index holding the category labels
    values_cols: tuple[int, ...]       # column indexes holding the series
    first_row: int                     # first data row (0-based index into SheetData.rows)
    last_row: int                      # last data row, inclusive
    anchor: str = "H2"                 # top-left cell where the chart is placed
    series_names: tuple[str, ...] = ()


@dataclass(slots=True)
class Block:
    """A titled block of rows on a sheet that is not one table (the 汇总 sheet is several)."""

    title: str
    columns: list[Column]
    rows: list[list[Any]]
    charts: list[ChartSpec] = field(default_factory=list)
    note: str = ""


@runtime_checkable
class Spooled(Protocol):
    """Rows already encoded for the writer as they were made (``xlsx.RowSpool``): a big sheet
    is never held in memory as values."""

    first_row: int
    count: int

    def __len__(self) -> int: ...


@dataclass(slots=True)
class SheetData:
    name: str
    columns: list[Column] = field(default_factory=list)
    rows: list[list[Any]] | Spooled = field(default_factory=list)
    key_columns: tuple[str, ...] = ()  # column keys that identify a row for manager-edit readback
    legacy_key_columns: tuple[str, ...] = ()  # how a workbook of an older version identified rows
    as_table: bool = True              # an Excel Table with filters
    freeze_header: bool = True
    charts: list[ChartSpec] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)  # used instead of columns/rows (汇总)
    note: str = ""                     # one line above the table explaining the sheet
    hidden: bool = False               # bookkeeping for the daemon, not for people
