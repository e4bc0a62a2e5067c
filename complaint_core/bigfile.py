"""A shop file with one big complaint sheet, read, checked and prepared a window of rows at a
time in the reading child (issue 17).

A shop with years of history in one workbook (30,000 complaints) made its reading child hold
calamine's whole range, every row built from it, every finding and every encoded row at once:
170 MiB, where a file of 10,000 took 95. Here the sheet comes in windows (``windows``), and
each window's rows are checked (``validate.TableCheck``), encoded for the store
(``codec.prepare_rows``) and pickled into the slices the daemon receives before the next
window is read: the child holds one window's rows, the file's findings as JSON, and what
recognises an id seen before.

The answer is the one the whole read gives (``isolate._work``): the same rows, findings and
settings, byte for byte. Only the plain case is read so: one sheet big enough to pay for
windows, holding the workbook's only complaint table, with no table below or beside it, no
cell cut out as too far away, and a shop code in 设置 (without one, the shop is the one most
rows name, known only after the last row). Anything else, or anything unexpected on the way,
gives None: the file is read whole, as before.
"""

from __future__ import annotations

import dataclasses
import zipfile
from datetime import datetime
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import TYPE_CHECKING

from python_calamine import CalamineWorkbook

from .bounds import CELL_BUDGET, bound_sheets
from .holidays import with_workbook_holidays
from .model import ComplaintTable, Finding
from .reader import (
    _SUFFIXES_OF,
    HEADER_SCAN_ROWS,
    _beside,
    _next_header,
    _risk_words,
    _settings,
    _table,
    _utf8,
    complaint_sheet_order,
    find_header,
)
from .safety import WorkbookFacts, check_workbook
from .schema import MAX_SHOP_CHARS
from .settings import Settings
from .store import dcjson
from .store.codec import Prepared, PreparedRow, encode_findings, foreign_shop_findings, prepare_rows
from .validate import TableCheck, table_dues
from .values import no_nul
from .windows import big_sheets, windows

if TYPE_CHECKING:
    from .isolate import PackedRows

__all__ = ["prepare_in_windows"]


def _items(findings: list[Finding]) -> bytes:
    """``codec.encode_findings`` of ``findings`` without its brackets: the file's JSON array is
    these parts joined by commas."""
    return encode_findings(findings)[1:-1]


def _plain(p: Path, facts: WorkbookFacts) -> tuple[str, str, Settings, tuple[str, ...] | None, bool, str] | None:
    """(sheet, its part, 设置, escalation words, date1904, shop) of a file to read in windows."""
    if facts.kind != "xlsx" or p.suffix.lower() not in _SUFFIXES_OF["xlsx"] or not _utf8(p):
        return None
    with zipfile.ZipFile(p) as zf:
        big = big_sheets(zf)
    if len(big) != 1 or bound_sheets(p, facts):
        return None
    ((name, part),) = big.items()
    wb = CalamineWorkbook.from_path(str(p))
    names = list(wb.sheet_names)
    if name not in names:
        return None
    for other in complaint_sheet_order(names):
        if other == name:
            continue
        sheet = wb.get_sheet_by_name(other)
        if (sheet.height or 0) * (sheet.width or 0) > CELL_BUDGET:
            return None
        grid = sheet.to_python()
        if grid and find_header(grid) is not None:
            return None   # another complaint table (a backup copy of the sheet, another shop)
    settings = with_workbook_holidays(_settings(wb, p), wb, p)   # 设置 + 节假日
    risk_words = _risk_words(wb, p)
    code = settings.shop_code
    if not code or len(no_nul(str(code).strip())) > MAX_SHOP_CHARS:
        return None
    return name, part, settings, risk_words, facts.date1904, no_nul(str(code).strip())


def prepare_in_windows(path: str | Path, now: datetime, facts: WorkbookFacts | None = None) -> Prepared | None:
    """What ``codec.prepare`` gives for the file's checked tables (as ``isolate._work`` makes
    it), built a window of rows at a time; None when the file is not one to read so.
    ``facts``: what ``check_workbook`` found of the file, when the caller checked it already."""
    from .isolate import PackedRows

    p = Path(path)
    try:
        plain = _plain(p, facts or check_workbook(p))
    except (MemoryError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - pyo3's PanicException too: the whole read says what is wrong
        return None
    if plain is None:
        return None
    name, part, settings, risk_words, date1904, shop = plain
    rows = PackedRows(0)
    try:
        made = _made(p, name, part, settings, risk_words, date1904, shop, now, rows)
    except (MemoryError, KeyboardInterrupt, SystemExit):
        rows.close()
        raise
    except BaseException:  # noqa: BLE001 - a window calamine panics on: read whole, which says what is wrong
        made = None
    if made is None:
        rows.close()
        return None
    sheet, findings, count, total = made
    rows.seal(total)
    return Prepared(sheet, rows, findings, count, shop=shop, settings_json=dcjson.dumps(settings))


def _made(p: Path, name: str, part: str, settings: Settings, risk_words: tuple[str, ...] | None, date1904: bool,
          shop: str, now: datetime, out: PackedRows) -> tuple[str, bytes, int, int] | None:
    """(sheet, findings JSON, how many, rows) with the rows put into ``out``; None: read whole."""
    from .isolate import _SLICE

    table: ComplaintTable | None = None
    check: TableCheck | None = None
    header: tuple[int, dict[str, int], dict[str, int]] | None = None
    head: list[bytes] = []
    found: list[bytes] = []
    count = 0
    foreign: list[Finding] = []
    pending: list[PreparedRow] = []
    total = 0
    short = False   # a first window of fewer rows than a header is looked for in
    for first_row, grid in windows(p, name, part):
        if short:
            return None   # the whole sheet's header may lie in the rows after it
        if table is None:
            short = len(grid) < HEADER_SCAN_ROWS
            header = find_header(grid)
            if header is None or _beside(header[1], header[2]) is not None or _next_header(grid, header[0] + 1):
                return None
            table = _table(grid, header, len(grid), sheet=no_nul(name), path=p, date1904=date1904, shop_code=None,
                           first_row=first_row, first_col=0)
            table.settings = settings
            table.risk_words = risk_words
            table.shop_code = settings.shop_code or None
            check = TableCheck(table, now=now)
            missing = check.head()
            count += len(missing)
            head.append(_items(missing))
            window = table.rows
            table.rows = []
        else:
            assert header is not None and check is not None
            if _next_header(grid, 0) is not None:
                return None
            part_of = _table(grid, (-1, header[1], header[2]), len(grid), sheet=table.sheet, path=p,
                             date1904=date1904, shop_code=None, first_row=first_row, first_col=0)
            window = part_of.rows
            if window:
                table.last_row = part_of.last_row
        if not window:
            continue
        here = dataclasses.replace(table, rows=window)
        dues = table_dues(here)
        got = check.rows(window, dues)
        count += len(got)
        found.append(_items(got))
        foreign += foreign_shop_findings(here, p, shop)
        pending += prepare_rows(here, p, settings, shop, dues, consume=True)
        del here, window, grid
        while len(pending) >= _SLICE:
            out.add(bytes(ForkingPickler.dumps(pending[:_SLICE])))
            total += _SLICE
            del pending[:_SLICE]
    if table is None or check is None:
        return None
    if pending:
        out.add(bytes(ForkingPickler.dumps(pending)))
        total += len(pending)
    ahead, after = check.end()
    count += len(ahead) + len(after) + len(foreign)
    parts = [_items(ahead), *head, *found, _items(after), _items(foreign)]
    return table.sheet, b"[" + b",".join(x for x in parts if x) + b"]", count, total

