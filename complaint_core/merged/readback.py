"""Read the columns managers own back from the current merged workbook.

Managers type into the merged workbook (主管批示, 处罚确认…); the daemon rewrites that file,
so before each rewrite it reads those cells back, keyed by the row's key columns, and keeps them.
Only cells that differ from what the daemon wrote there are the manager's: the hidden sheet
``_rendered`` holds the values as written, so a shop's own 主管批示 shown in the merged
workbook is not mistaken for a manager's typing (and a later change by the shop still shows).
A file the manager is saving this very second may be briefly unreadable: we retry.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import MergedUnreadable
from ..store.view import RowKey
from .colread import ColumnsUnreadable, read_columns, sheet_bytes
from .model import Column, SheetData, Spooled

log = logging.getLogger("complaint_desk.merged")

# A sheet whose XML is this big is read column by column (merged/colread.py); a smaller one
# whole by calamine. Column by column is now as fast or faster at every size and takes less
# memory: 10,000 complaints 0.31-0.39 s in 60 MiB against 0.35-0.51 s in 85 MiB; 100,000 saved by
# Excel 3.3-3.4 s in 170 MiB against 4.0-4.3 s in 456 MiB. 8 MB of XML is about 4,000
# complaints on 全部投诉: below that the package is read whole (a few MiB either way).
STREAM_FROM = 8 << 20

RENDERED_SHEET = "_rendered"
STORE_MARK = "_store"      # a row of _rendered naming the store that wrote the workbook
SENT_MARK = "_sent"        # a row of _rendered per reminder already sent
LEGACY = "_legacy"         # first element of a key read by a sheet's legacy key columns


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


@dataclass
class ReadBack:
    """What the merged workbook on disk holds of managers' work."""

    edits: dict[str, dict[RowKey, dict[str, Any]]] = field(default_factory=dict)  # changed since written
    cells: dict[str, dict[RowKey, dict[str, Any]]] = field(default_factory=dict)  # every manager cell
    written: dict[str, dict[RowKey, dict[str, Any]]] = field(default_factory=dict)  # _rendered: as written
    store_id: str | None = None      # the store that wrote it (None: written before stores had ids)
    sent: list[list[Any]] = field(default_factory=list)   # [channel key, recipient, sent at] of sent reminders
    found: bool = False              # the file exists and could be read


def read_manager_edits(path: Path, sheets: list[SheetData], *, attempts: int = 5,
                       delay: float = 0.2) -> ReadBack:
    """Every manager-owned column of ``sheets`` as the workbook at ``path`` holds it."""
    wanted = [s for s in sheets if s.key_columns and any(c.manager_owned for c in s.columns)]
    if not path.exists():
        return ReadBack()
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            # every sheet calamine may read: a big one it reads too when the column reader refuses it
            wb = _calamine(path, {RENDERED_SHEET, *(s.name for s in wanted)})
            names = set(wb.sheet_names)
            back = ReadBack(found=True)
            written = None
            # row by row (``iter_rows``): Python objects for one row at a time, not for every
            # cell of a 100,000-row sheet at once (639 → 382 MiB at 100,000 complaints)
            if RENDERED_SHEET in names:
                written, back.store_id, back.sent = _written(wb.get_sheet_by_name(RENDERED_SHEET).iter_rows())
                back.written = written
            for sheet in wanted:
                if sheet.name in names:
                    got = _read_sheet(_columns(path, sheet, wb), sheet)
                    back.cells[sheet.name] = got
                    back.edits[sheet.name] = got if written is None else _changed(got, written.get(sheet.name, {}))
            return back
        except Exception as exc:  # noqa: BLE001 - a half-saved file: try again shortly
            last = exc
            time.sleep(delay * (attempt + 1))
    raise MergedUnreadable(path, str(last))


def read_rows(path: Path, sheet: SheetData, refs: set[str], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``columns`` of the rows of ``sheet`` whose key (one column) is in ``refs``, as the
    workbook at ``path`` shows them: what a manager's row said when its key is no longer the
    store's (see render._adopt_unknown). Read row by row; only the asked rows are kept."""
    try:
        wb = _calamine(path, {sheet.name})
        grid = wb.get_sheet_by_name(sheet.name).iter_rows()
    except Exception as exc:  # noqa: BLE001 - read a moment ago: unreadable now is a real error
        raise MergedUnreadable(path, str(exc)) from exc
    found = _table(grid, sheet, sheet.key_columns[:1])
    if found is None:
        return {}
    index, rows = found
    at = index[sheet.key_columns[0]]
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        ref = _key_text(row[at]) if at < len(row) else ""
        if ref in refs:
            out[ref] = {k: (row[index[k]] if index[k] < len(row) else None) for k in columns if k in index}
    return out


def _calamine(path: Path, sheets: set[str]) -> Any:
    """calamine's workbook of ``path``, cells far outside the tables of the ``sheets`` it will
    read cut out first: one typed by mistake at XFD1048576 would have calamine ask for 512 GiB
    and abort the daemon (complaint_core/bounds.py, as for a shop's file; a table itself may be
    as big as the chain). They are outside every table, so no manager cell is among them."""
    import io

    from python_calamine import CalamineWorkbook

    from ..bounds import bound_sheets, trimmed_copy
    from ..safety import WorkbookFacts

    bounds = bound_sheets(path, WorkbookFacts(kind="xlsx"), only=sheets, any_block=True)
    if not bounds:
        return CalamineWorkbook.from_path(str(path))
    for bound in bounds:
        log.warning("%s：工作表“%s”表格之外的 %d 个单元格未读取（如 %s）(far cells not read back)",
                    path.name, bound.name, len(bound.strays), bound.strays[0])
    return CalamineWorkbook.from_filelike(io.BytesIO(trimmed_copy(path, bounds)))


def _table(grid: Iterable[list[Any]], sheet: SheetData, key_columns: tuple[str, ...],
           head: int = 5) -> tuple[dict[str, int], Iterator[list[Any]]] | None:
    """The column of each of ``sheet``'s fields and the rows under its header, the header being
    the first of the first ``head`` rows that names every one of ``key_columns``."""
    headers = {c.header: c.key for c in sheet.columns}
    rows = iter(grid)
    top = list(itertools.islice(rows, head))
    for h_row, cells in enumerate(top):
        index = {headers[str(v)]: i for i, v in enumerate(cells) if str(v) in headers}
        if all(k in index for k in key_columns):
            return index, itertools.chain(top[h_row + 1:], rows)
    return None


def _columns(path: Path, sheet: SheetData, wb: Any) -> Iterable[list[Any]]:
    """The rows of ``sheet`` with values in its key and manager columns only, streamed
    (merged/colread.py); a package that reader does not expect is read by calamine instead."""
    names = {c.header for c in sheet.columns
             if c.manager_owned or c.key in sheet.key_columns or c.key in sheet.legacy_key_columns}

    def pick(top: list[list[Any]]) -> set[int]:
        return {i for row in top for i, v in enumerate(row) if str(v) in names}

    try:
        if sheet_bytes(path, sheet.name) >= STREAM_FROM:
            return read_columns(path, sheet.name, pick)
    except ColumnsUnreadable as exc:
        log.info("按列读取失败，改为整表读取 (column read fell back to calamine: %s)", exc.reason)
    return wb.get_sheet_by_name(sheet.name).iter_rows()  # type: ignore[no-any-return]


def _read_sheet(grid: Iterable[list[Any]], sheet: SheetData) -> dict[RowKey, dict[str, Any]]:
    rows = iter(grid)
    top = list(itertools.islice(rows, 5))   # the header is within the first rows
    for key_columns, tag in ((sheet.key_columns, ()), (sheet.legacy_key_columns, (LEGACY,))):
        if key_columns and (found := _table(top, sheet, key_columns)) is not None:
            index, under = found
            return _rows(itertools.chain(under, rows), sheet, index, key_columns, tag)
    return {}


def _rows(grid: Iterable[list[Any]], sheet: SheetData, index: dict[str, int], key_columns: tuple[str, ...],
          tag: tuple[str, ...]) -> dict[RowKey, dict[str, Any]]:
    owned = [c.key for c in sheet.columns if c.manager_owned and c.key in index]
    out: dict[RowKey, dict[str, Any]] = {}
    for cells in grid:
        def get(k: str, cells: list[Any] = cells) -> Any:
            i = index[k]
            return cells[i] if i < len(cells) else None

        key = tuple(_key_text(get(k)) for k in key_columns)
        if not any(key):
            continue
        out[tag + key] = {k: _cell_text(get(k)) for k in owned}
    return out


def _written(grid: Iterable[list[Any]]) -> tuple[dict[str, dict[RowKey, dict[str, Any]]], str | None,
                                                 list[list[Any]]]:
    out: dict[str, dict[RowKey, dict[str, Any]]] = {}
    store_id: str | None = None
    sent: list[list[Any]] = []
    for cells in itertools.islice(grid, 1, None):
        if len(cells) < 4 or not cells[0]:
            continue
        sheet, key, column, value = cells[:4]
        if sheet == STORE_MARK:
            store_id = str(key)
        elif sheet == SENT_MARK:
            sent.append([str(key), str(column), _cell_text(value)])
        else:
            out.setdefault(str(sheet), {}).setdefault(tuple(json.loads(key)), {})[str(column)] = _cell_text(value)
    return out, store_id, sent


def _changed(got: dict[RowKey, dict[str, Any]], written: dict[RowKey, dict[str, Any]]) -> dict[RowKey, dict[str, Any]]:
    """Only the cells a manager changed since the daemon wrote them."""
    out: dict[RowKey, dict[str, Any]] = {}
    for key, columns in got.items():
        before = written.get(key, {})
        diff = {c: v for c, v in columns.items() if _key_text(v) != _key_text(before.get(c))}
        if diff:
            out[key] = diff
    return out


Cells = dict[str, dict[RowKey, dict[str, Any]]]


def rebase(back: ReadBack, since: Cells) -> None:
    """Take ``since`` (cells read back and stored after the workbook was written, and before
    this read) as part of what was written: ``back.edits`` becomes what the manager changed
    after them. A cell put back as the workbook was written is then an edit too (cleared, or
    the value it was written with), not lost under the one read before."""
    for name, got in back.cells.items():
        extra = since.get(name)
        if not extra:
            continue
        base = overlay({key: dict(cells) for key, cells in back.written.get(name, {}).items()}, extra)
        back.edits[name] = _changed(got, base)


def overlay(into: dict[RowKey, dict[str, Any]], cells: dict[RowKey, dict[str, Any]]) -> dict[RowKey, dict[str, Any]]:
    """``into`` (changed in place) with ``cells`` laid over it, row by row."""
    for key, columns in cells.items():
        into.setdefault(key, {}).update(columns)
    return into


def cell_texts(cells: Cells) -> list[list[Any]]:
    """``cells`` as JSON can hold them: [sheet, key, column, text as compared]."""
    return [[name, list(key), column, _key_text(value)] for name, rows in cells.items()
            for key, columns in rows.items() for column, value in columns.items()]


def cells_of(texts: list[list[Any]]) -> Cells:
    """``cell_texts`` read back."""
    out: Cells = {}
    for name, key, column, text in texts:
        out.setdefault(name, {}).setdefault(tuple(key), {})[column] = text
    return out


RENDERED_COLUMNS = [Column("sheet", "sheet"), Column("key", "key"), Column("column", "column"),
                    Column("value", "value")]


def rendered_head(*, store_id: str = "", sent: Sequence[tuple[str, str, datetime]] = ()) -> list[list[Any]]:
    """The first rows of ``_rendered``: the store that wrote the workbook, the reminders sent."""
    rows: list[list[Any]] = []
    if store_id:
        rows.append([STORE_MARK, store_id, "", ""])
    rows.extend([SENT_MARK, key, recipient, when] for key, recipient, when in sent)
    return rows


def rendered_rows(sheet: str, key: Sequence[Any], cells: dict[str, Any]) -> list[list[Any]]:
    """The rows of ``_rendered`` for one row of ``sheet``: each non-empty manager-owned cell as
    written, under the row's key."""
    return _typed_rows(sheet, key, [(k, v) for k, v in cells.items() if v not in (None, "")])


def rendered_table_rows(sheet: str, refs: Sequence[str], rows: Sequence[list[Any]],
                        owned: Sequence[tuple[int, str]]) -> list[list[Any]]:
    """``rendered_rows`` of many rows of ``sheet`` at once, each keyed by its one reference
    (全部投诉's 记录标识): the cells of the ``owned`` columns (index in the row, key)."""
    out: list[list[Any]] = []
    for ref, row in zip(refs, rows, strict=True):
        out += _typed_rows(sheet, (ref,), [(k, v) for i, k in owned if (v := row[i]) not in (None, "")])
    return out


def _typed_rows(sheet: str, key: Sequence[Any], typed: list[tuple[str, Any]]) -> list[list[Any]]:
    """The ``_rendered`` rows of one row's typed cells (column key, value)."""
    if not typed:
        return []
    text = _key_json(key)
    return [[sheet, text, k, _cell_text(v)] for k, v in typed]


def _key_json(key: Sequence[Any]) -> str:
    """How ``_rendered`` writes a row's key: the JSON of its cells' texts."""
    one = key[0] if len(key) == 1 else None
    if one.__class__ is str and one.isascii() and one.isalnum():
        return f'["{one}"]'   # a record reference ("R…"): what json.dumps writes, without its call
    return json.dumps([_key_text(v) for v in key], ensure_ascii=False)


def rendered_sheet(rows: list[list[Any]] | Spooled) -> SheetData:
    """The hidden record of this rewrite (``rendered_head``, then ``rendered_rows`` of every
    sheet with manager columns): a new store never sends a reminder twice, and a shop's own
    value shown in a manager column is never taken for a manager's typing."""
    return SheetData(RENDERED_SHEET, RENDERED_COLUMNS, rows, as_table=False, freeze_header=False, hidden=True)
