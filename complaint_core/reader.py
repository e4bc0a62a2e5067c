"""Find and read the complaint tables in a shop's workbook.

Shops add a title row above the header, reorder columns, type English headers, leave
blank rows in the middle and add columns of their own; some keep a second complaint sheet
(投诉登记2025 beside 投诉登记) or a second table below or beside the first. The reader copes
with all of that, keeps every extra column, and refuses anything else with one line naming
the file and the reason. Reading goes through python-calamine (about 8x faster than
openpyxl), opened by the file's content (xlsx, xlsm, xls, WPS et, ods, xlsb in any case of
name), after ``safety.check_workbook`` has refused bombs and foreign formats and
``safety.bound_sheets`` has cut out cells far from any table.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook

from .bounds import CELL_BUDGET, COL_GAP, ROW_GAP, block_end, bound_sheets, trimmed_copy
from .errors import BadSetting, NotAComplaintWorkbook, UnreadableWorkbook
from .gcpause import paused_gc
from .holidays import SHEET_HOLIDAYS, with_workbook_holidays
from .model import ComplaintTable, SourceRow, column_letter, is_blank
from .playbook import DEFAULT_PLAYBOOK, Playbook, playbook_from_rows
from .safety import WorkbookFacts, check_workbook
from .schema import (
    FIELD_BY_KEY,
    FIELDS,
    HEADER_ALIASES,
    SHEET_COMPLAINTS,
    SHEET_FINDINGS,
    SHEET_HOWTO,
    SHEET_LISTS,
    SHEET_MARKS,
    SHEET_PLAYBOOK,
    SHEET_SETTINGS,
    normalise_header,
)
from .settings import DEFAULTS, Settings, settings_from_rows
from .values import EARLIEST, LATEST, no_nul, normalise

HEADER_SCAN_ROWS = 30
MIN_MATCHES = 4
CORE_KEYS = frozenset({"received_at", "customer_name", "description", "complaint_id", "category", "channel"})
# Header texts exactly as the template and its English version write them: a row holding
# several of them below a table starts a second table (one C-level set test per row).
_HEADER_TEXTS = frozenset([f.zh for f in FIELDS] + [f.en for f in FIELDS])
# The template's own sheets other than the complaint table: never read as complaints.
_NOT_COMPLAINTS = frozenset({SHEET_SETTINGS, SHEET_PLAYBOOK, SHEET_HOWTO, SHEET_LISTS, SHEET_FINDINGS, SHEET_HOLIDAYS,
                             SHEET_MARKS})


def complaint_sheet_order(names: list[str]) -> list[str]:
    """The sheets that may hold a complaint table, 投诉登记 first, then the workbook's order (the
    reader and the add-in look for the table the same way)."""
    return sorted((n for n in names if n not in _NOT_COMPLAINTS),
                  key=lambda n: (n != SHEET_COMPLAINTS, names.index(n)))


def find_header(grid: list[list[Any]]) -> tuple[int, dict[str, int], dict[str, int]] | None:
    """(row index, field key -> column, extra header -> column) of the best header row."""
    best: tuple[int, dict[str, int], dict[str, int]] | None = None
    best_score = 0
    for r, row in enumerate(grid[:HEADER_SCAN_ROWS]):
        # A row scores at most one per text cell, so once a header is found the data rows
        # below it are skipped unless they could beat it (the template's header finds all).
        if best_score and (best_score >= len(FIELD_BY_KEY)
                           or sum(isinstance(cell, str) and cell != "" for cell in row) <= best_score):
            continue
        keys: dict[str, int] = {}
        extras: dict[str, int] = {}
        for c, cell in enumerate(row):
            if not isinstance(cell, str) or not cell.strip():
                continue
            key = HEADER_ALIASES.get(normalise_header(cell))
            if key is not None and key not in keys:
                keys[key] = c
            else:
                extras[cell.strip()] = c
        score = len(keys)
        if score > best_score and score >= MIN_MATCHES and len(CORE_KEYS & keys.keys()) >= 2:
            best, best_score = (r, keys, extras), score
    return best


class _Plan:
    """How to read one row: the field columns grouped by kind, each kind with its own loop.

    This runs once per cell of every shop file, so the common cells (text as typed, a
    choice picked from the dropdown, a date Excel stored as a date, an empty cell) are
    settled inline, and only the rest goes through ``values.normalise``. The loops look alike
    and test for a blank cell inline (``model.is_blank`` written out) on purpose: a shared
    helper would cost a call per cell, and the calls were what made this pass slow.
    """

    def __init__(self, key_cols: list[tuple[str, int]]) -> None:
        kind = {k: FIELD_BY_KEY[k].type for k, _ in key_cols}
        self.index = dict(key_cols)
        # A copy of this keeps the values in the sheet's column order and never resizes.
        self.template = dict.fromkeys(self.index)
        self.text = [(k, c) for k, c in key_cols if kind[k] == "text"]
        self.choice = [(k, c, frozenset(FIELD_BY_KEY[k].choices)) for k, c in key_cols
                       if kind[k] == "choice"]
        self.datetime = [(k, c) for k, c in key_cols if kind[k] == "datetime"]
        self.money = [(k, c) for k, c in key_cols if kind[k] == "money"]
        self.other = [(k, c) for k, c in key_cols
                      if kind[k] not in ("text", "choice", "datetime", "money")]

    def values(self, line: Sequence[Any], date1904: bool) -> tuple[dict[str, Any], bool]:
        """(field key -> canonical value, whether any field cell is filled in)."""
        values = self.template.copy()   # every key starts as None: an empty cell
        typed = False
        for k, c in self.text:
            v = line[c]
            if type(v) is str:
                v = v.strip()
                if "\x00" in v:   # a test, not a call, for each text cell: this runs for every cell read
                    v = no_nul(v)
                if v:
                    values[k] = v
                    typed = True
            elif v is not None:
                values[k] = normalise(k, v, date1904=date1904)
                typed = True
        for k, c, choices in self.choice:
            v = line[c]
            if v in choices:
                values[k] = v   # picked from the dropdown: already canonical
                typed = True
            elif v is not None and (type(v) is not str or v.strip()):
                values[k] = normalise(k, v, date1904=date1904)
                typed = True
        for k, c in self.datetime:
            v = line[c]
            if type(v) is datetime and EARLIEST <= v < LATEST:
                values[k] = v.replace(microsecond=0) if v.microsecond else v
                typed = True
            elif v is not None and (type(v) is not str or v.strip()):
                values[k] = normalise(k, v, date1904=date1904)
                typed = True
        for k, c in self.money:
            v = line[c]
            if type(v) is float:   # a number cell: whole yuan are kept as int, as parse_money does
                values[k] = int(v) if v.is_integer() else v
                typed = True
            elif v is not None and (type(v) is not str or v.strip()):
                values[k] = normalise(k, v, date1904=date1904)
                typed = True
        for k, c in self.other:   # a kind the schema may gain later: the full normaliser
            v = line[c]
            if not is_blank(v):
                values[k] = normalise(k, v, date1904=date1904)
                typed = True
        return values, typed


def table_from_grid(
    grid: list[list[Any]],
    *,
    sheet: str,
    path: Path | None = None,
    date1904: bool = False,
    shop_code: str | None = None,
    first_row: int = 1,
    first_col: int = 0,
) -> ComplaintTable:
    """The (first) complaint table in a block of cells (the add-in passes what one range read gives).

    ``first_row``/``first_col`` say where the grid sits in the sheet (Excel row number,
    0-based column), so findings name the right cells.
    """
    found = find_header(grid)
    if found is None:
        raise _no_header(path, sheet)
    return _table(grid, found, len(grid), sheet=sheet, path=path, date1904=date1904, shop_code=shop_code,
                  first_row=first_row, first_col=first_col)


def _no_header(path: Path | None, sheet: str) -> NotAComplaintWorkbook:
    return NotAComplaintWorkbook(
        path or sheet,
        f"工作表“{sheet}”中找不到投诉表的表头（需要至少 {MIN_MATCHES} 个已知列，如 投诉编号、受理时间、"
        "客户姓名、投诉内容；中英文均可） (no complaint header row found)",
    )


def tables_from_grid(
    grid: list[list[Any]],
    *,
    sheet: str,
    path: Path | None = None,
    date1904: bool = False,
    first_row: int = 1,
    first_col: int = 0,
) -> list[ComplaintTable]:
    """Every complaint table on one sheet: the first, any table below it that starts with its
    own header row, and any table beside it (the same header fields repeated further right)."""
    found = find_header(grid)
    if found is None:
        raise _no_header(path, sheet)
    hr, keys, extras = found
    split = _beside(keys, extras)
    if split is not None:
        left = [row[:split] for row in grid]
        right = [row[split:] for row in grid]
        out = tables_from_grid(left, sheet=sheet, path=path, date1904=date1904, first_row=first_row,
                               first_col=first_col)
        try:
            out += tables_from_grid(right, sheet=sheet, path=path, date1904=date1904, first_row=first_row,
                                    first_col=first_col + split)
        except NotAComplaintWorkbook:
            pass
        return out
    tables: list[ComplaintTable] = []
    while found is not None:
        hr = found[0]
        nxt = _next_header(grid, hr + 1)
        stop = nxt[0] if nxt is not None else len(grid)
        tables.append(_table(grid, found, stop, sheet=sheet, path=path, date1904=date1904, shop_code=None,
                             first_row=first_row, first_col=first_col))
        found = nxt
    return tables


def _beside(keys: dict[str, int], extras: dict[str, int]) -> int | None:
    """The column where a second table starts on the header row, when the fields repeat."""
    again: dict[str, int] = {}
    for text, c in extras.items():
        key = HEADER_ALIASES.get(normalise_header(text))
        if key is not None and key in keys and c > keys[key]:
            again.setdefault(key, c)
    if len(again) >= MIN_MATCHES and len(CORE_KEYS & again.keys()) >= 2:
        return min(again.values())
    return None


def _next_header(grid: list[list[Any]], start: int) -> tuple[int, dict[str, int], dict[str, int]] | None:
    """The next row at or after ``start`` that is a complaint header row itself."""
    texts = _HEADER_TEXTS
    for r in range(start, len(grid)):
        line = grid[r]
        if texts.isdisjoint(line):
            continue
        if sum(1 for v in line if type(v) is str and v in texts) < MIN_MATCHES:
            continue
        found = find_header([line])
        if found is not None:
            return (r, found[1], found[2])
    return None


def _table(
    grid: list[list[Any]],
    found: tuple[int, dict[str, int], dict[str, int]],
    stop: int,
    *,
    sheet: str,
    path: Path | None,
    date1904: bool,
    shop_code: str | None,
    first_row: int,
    first_col: int,
) -> ComplaintTable:
    hr, keys, extras = found
    # Trailing header cells with no name and no data are Excel's used-range slack, not columns.
    extras = {h: c for h, c in extras.items() if h}
    key_cols = list(keys.items())
    extra_cols = list(extras.items())
    plan = _Plan(key_cols)
    width = max(c for _, c in key_cols + extra_cols) + 1
    rows: list[SourceRow] = []
    last = hr
    for r in range(hr + 1, stop):
        line = grid[r]
        if len(line) < width:   # a ragged row from a hand-made grid: its missing cells are empty
            line = list(line) + [None] * (width - len(line))
        values, typed = plan.values(line, date1904)
        ext: dict[str, Any] = {}
        for h, c in extra_cols:
            v = line[c]
            if not is_blank(v):
                ext[h] = v
        if not typed and not ext:
            continue  # a blank row in the middle is a gap, not the end of the table
        # Positional (row, values, extras, cells, cell_index): keywords cost 3% of the read.
        rows.append(SourceRow(first_row + r, values, ext, line, plan.index))
        last = r
    return ComplaintTable(
        path=path,
        sheet=sheet,
        header_row=first_row + hr,
        first_col=first_col + min([c for _, c in key_cols] + [c for _, c in extra_cols]),
        columns={k: first_col + c for k, c in key_cols},
        extra_columns={h: first_col + c for h, c in extra_cols},
        rows=rows,
        shop_code=shop_code,
        date1904=date1904,
        last_row=first_row + last,
    )


def _settings(wb: CalamineWorkbook, path: Path) -> Settings:
    """The shop's own deadlines and business hours from its 设置 sheet (defaults when absent)."""
    if SHEET_SETTINGS not in wb.sheet_names:
        return DEFAULTS
    rows = wb.get_sheet_by_name(SHEET_SETTINGS).to_python()
    return settings_from_rows(rows, sheet=f"{path.name}!{SHEET_SETTINGS}")


def _risk_words(wb: CalamineWorkbook, path: Path) -> tuple[str, ...] | None:
    """The shop's escalation words from its 处理手册 sheet (None: the built-in list).

    A playbook the shop broke while editing must not make the complaints unreadable: validation
    then uses the built-in words, and `suggest` names the bad cell.
    """
    if SHEET_PLAYBOOK not in wb.sheet_names:
        return None
    try:
        return playbook_from_rows(wb.get_sheet_by_name(SHEET_PLAYBOOK).to_python(), sheet=SHEET_PLAYBOOK).risk_words
    except BadSetting:
        return None


_SUFFIXES_OF = {"xlsx": (".xlsx", ".xlsm"), "xls": (".xls",), "xlsb": (".xlsb",), "ods": (".ods",)}


def _open(p: Path, facts: WorkbookFacts, bounds: list[Any]) -> Any:
    """The workbook opened by its content; with far cells cut out when ``bounds`` names any."""
    if bounds:
        return CalamineWorkbook.from_filelike(io.BytesIO(trimmed_copy(p, bounds)))
    if p.suffix.lower() in _SUFFIXES_OF[facts.kind] and _utf8(p):
        # named for what it holds: opened by name, calamine reads only the format the name says
        # (so its error is the real reason, where sniffing the content hides it), and reads the
        # package from the file as it needs it; from an open file it first copies the whole
        # file into memory (20 MiB more at the peak of a 10 MB workbook of 30,000 complaints)
        return CalamineWorkbook.from_path(str(p))
    # a name that does not say what it holds (calamine sniffs the content), or one that is not
    # UTF-8 (a folder copied from an old PC in GBK): calamine takes only names it can decode
    with p.open("rb") as fh:
        return CalamineWorkbook.from_filelike(fh)


def _utf8(p: Path) -> bool:
    try:
        str(p).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _bounded_grid(sheet: Any, start: tuple[int, int]) -> tuple[list[list[Any]], list[tuple[str, str]]]:
    """The sheet's cells without those far from the rest, row by row, and the far ones named.

    For formats whose cells cannot be located before the parser runs (xls, xlsb, ods) the
    parser's own range is already built; this keeps the Python side from doubling it (one
    list per row, never a grid of a million rows) and names the far cells as for an xlsx.
    """
    kept: list[tuple[int, list[Any]]] = []
    cols: set[int] = set()
    for r, row in enumerate(rows_from_start(sheet)):
        if row.count("") == len(row):
            continue   # an empty row of the used range: the common case, tested in C
        used = [c for c, v in enumerate(row) if v != "" and v is not None]
        if used:
            kept.append((r, row))
            cols.update(used)
    if not kept:
        return [], []
    last_row = block_end([r for r, _ in kept], ROW_GAP)
    last_col = block_end(list(cols), COL_GAP)
    if (last_row + 1) * (last_col + 1) > CELL_BUDGET:
        raise UnreadableWorkbook(sheet.name, f"工作表“{sheet.name}”的已用区域过大（约 {last_row + 1} 行 × {last_col + 1} 列），"
                                             "无法安全读取 (used range too large)")
    grid: list[list[Any]] = [[] for _ in range(last_row + 1)]
    far: list[tuple[str, str]] = []
    for r, row in kept:
        for c, v in enumerate(row):
            if v != "" and v is not None and (r > last_row or c > last_col):
                far.append((f"{column_letter(start[1] + c)}{start[0] + r + 1}", str(v)[:60]))
        if r <= last_row:
            grid[r] = row[:last_col + 1]
    return grid, far


def rows_from_start(sheet: Any) -> Iterator[list[Any]]:
    """The sheet's rows one at a time from its first used row, as ``to_python`` gives them.

    python-calamine 0.9's ``iter_rows`` starts its columns at the first used one but its rows
    at the sheet's first, the rows above the first used one given empty: those are skipped
    here, and checked to be empty, so that a release that changes this fails loudly instead
    of shifting every row."""
    skip = (sheet.start or (0, 0))[0]
    for i, row in enumerate(sheet.iter_rows()):
        if i < skip:
            if row.count("") != len(row):
                raise RuntimeError(f"python-calamine's iter_rows gave a used row {i} above the sheet's first "
                                   f"used row {skip}: reader.rows_from_start no longer fits it")
            continue
        yield row


# Sheets longer than this are read row by row, each short text that repeats kept once
# (``_shared_texts_grid``): below it the rows are few enough that the 5 µs a row costs more
# than the memory it saves
SHARE_FROM_ROWS = 4_000
_SHORT = 16


def _shared_texts_grid(sheet: Any) -> list[list[Any]]:
    """The sheet's rows as ``to_python`` gives them, with one object for each short text that
    repeats: a choice from a dropdown (处理中, 电话, 愤怒…), a staff name, a shop code. calamine
    gives each cell its own; at 30,000 complaints the rows then took 86 MiB, 50 with the texts
    shared (issue 17: the reader of a shop with years of history in one workbook)."""
    seen: dict[str, str] = {}
    keep = seen.setdefault
    grid: list[list[Any]] = []
    for row in rows_from_start(sheet):
        for i, v in enumerate(row):
            if type(v) is str and len(v) <= _SHORT:
                row[i] = keep(v, v)
        grid.append(row)
    return grid


@paused_gc()   # a dict per row: the collector would walk them all again and again
def read_tables(path: str | Path, facts: WorkbookFacts | None = None) -> list[ComplaintTable]:
    """Every complaint table of a shop workbook (every sheet whose header matches, each table on
    a sheet), or raise UnreadableWorkbook with the reason. The first table carries the
    workbook's 设置 and the cells cut out as too far from any table. ``facts``: what
    ``check_workbook`` found of the file, when the caller checked it already."""
    p = Path(path)
    facts = facts or check_workbook(p)
    try:
        bounds = bound_sheets(p, facts)
        wb = _open(p, facts, bounds)
        names = list(wb.sheet_names)
        order = complaint_sheet_order(names)
        failure: NotAComplaintWorkbook | None = None
        tables: list[ComplaintTable] = []
        strays: list[tuple[str, str, str]] = [(b.name, ref, b.values.get(ref, "")) for b in bounds for ref in b.strays]
        settings: Settings | None = None
        risk_words: tuple[str, ...] | None = None
        for name in order:
            sheet = wb.get_sheet_by_name(name)
            start = sheet.start or (0, 0)
            if (sheet.height or 0) * (sheet.width or 0) > CELL_BUDGET:
                grid, far = _bounded_grid(sheet, start)   # xls/xlsb/ods: not located beforehand
                strays += [(name, ref, value) for ref, value in far]
            elif (sheet.height or 0) > SHARE_FROM_ROWS:
                grid = _shared_texts_grid(sheet)
            else:
                grid = sheet.to_python()
            # calamine's own copy of the cells (about 2 KB a row) goes before the rows are built
            # from the grid: a shop with years of history in one workbook (100,000 rows) needed
            # 0.2 GiB more while both were held
            del sheet
            if not grid:
                continue
            try:
                # a sheet's name names every row it holds in the store (an xls can hide a NUL in it)
                found = tables_from_grid(grid, sheet=no_nul(name), path=p, date1904=facts.date1904,
                                         first_row=start[0] + 1, first_col=start[1])
            except NotAComplaintWorkbook as exc:
                failure = failure or exc
                continue
            if settings is None:
                settings = with_workbook_holidays(_settings(wb, p), wb, p)  # 设置 + 节假日
                risk_words = _risk_words(wb, p)
            for table in found:
                table.settings = settings
                table.risk_words = risk_words
                table.shop_code = settings.shop_code or None
            tables += found
    except (UnreadableWorkbook, BadSetting, MemoryError):
        # out of memory is not a damaged file: the reading child says so, and reads the file
        # again in a fresh child when others read before it may have left it short
        raise
    except BaseException as exc:  # noqa: BLE001 - pyo3 PanicException derives from BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise UnreadableWorkbook(p, f"{facts.kind} 工作簿无法解析，文件可能已损坏 "
                                    f"({type(exc).__name__}: {str(exc)[:200]})") from None
    if not tables:
        raise NotAComplaintWorkbook(
            p, "不是投诉台账：没有任何工作表含有投诉表的表头（投诉编号、受理时间、客户姓名、投诉内容…）"
            " (no sheet has a complaint table header)")
    tables[0].stray_cells = strays
    return tables


def read_workbook(path: str | Path) -> ComplaintTable:
    """The first complaint table of a shop workbook (``read_tables`` gives every one)."""
    return read_tables(path)[0]


def read_playbook(path: str | Path) -> Playbook:
    """The shop's own 处理手册 sheet when the workbook has one, else the default playbook."""
    p = Path(path)
    facts = check_workbook(p)
    try:
        wb = _open(p, facts, bound_sheets(p, facts))
        if SHEET_PLAYBOOK not in wb.sheet_names:
            return DEFAULT_PLAYBOOK
        rows = wb.get_sheet_by_name(SHEET_PLAYBOOK).to_python()
    except (UnreadableWorkbook, MemoryError):
        raise
    except BaseException as exc:  # noqa: BLE001 - see read_tables
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise UnreadableWorkbook(path, f"处理手册无法读取 ({type(exc).__name__})") from None
    return playbook_from_rows(rows, sheet=f"{p.name}!{SHEET_PLAYBOOK}")
