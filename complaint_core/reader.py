"""Find and read the complaint table in a shop's workbook.

Shops add a title row above the header, reorder columns, type English headers, leave
blank rows in the middle and add columns of their own. The reader copes with all of
that, keeps every extra column, and refuses anything else with one line naming the file
and the reason. Reading goes through python-calamine (about 8x faster than openpyxl) after
``safety.check_xlsx`` has refused bombs and foreign formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook

from .errors import BadSetting, NotAComplaintWorkbook, UnreadableWorkbook
from .gcpause import paused_gc
from .holidays import with_workbook_holidays
from .model import ComplaintTable, SourceRow, is_blank
from .playbook import DEFAULT_PLAYBOOK, Playbook, playbook_from_rows
from .safety import check_xlsx
from .schema import (
    FIELD_BY_KEY,
    HEADER_ALIASES,
    SHEET_COMPLAINTS,
    SHEET_PLAYBOOK,
    SHEET_SETTINGS,
    normalise_header,
)
from .settings import DEFAULTS, Settings, settings_from_rows
from .values import normalise

HEADER_SCAN_ROWS = 30
MIN_MATCHES = 4
CORE_KEYS = frozenset({"received_at", "customer_name", "description", "complaint_id", "category", "channel"})


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
            if type(v) is datetime:
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
    """The complaint table in a block of cells (the add-in passes what one range read gives).

    ``first_row``/``first_col`` say where the grid sits in the sheet (Excel row number,
    0-based column), so findings name the right cells.
    """
    found = find_header(grid)
    if found is None:
        raise NotAComplaintWorkbook(
            path or sheet,
            f"工作表“{sheet}”中找不到投诉表的表头（需要至少 {MIN_MATCHES} 个已知列，如 投诉编号、受理时间、"
            "客户姓名、投诉内容；中英文均可） (no complaint header row found)",
        )
    hr, keys, extras = found
    # Trailing header cells with no name and no data are Excel's used-range slack, not columns.
    extras = {h: c for h, c in extras.items() if h}
    key_cols = list(keys.items())
    extra_cols = list(extras.items())
    plan = _Plan(key_cols)
    width = max(c for _, c in key_cols + extra_cols) + 1
    rows: list[SourceRow] = []
    last = hr
    for r in range(hr + 1, len(grid)):
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


@paused_gc()   # a dict per row: the collector would walk them all again and again
def read_workbook(path: str | Path) -> ComplaintTable:
    """Read the complaint table of a shop workbook, or raise UnreadableWorkbook with the reason."""
    p = Path(path)
    facts = check_xlsx(p)
    try:
        wb = CalamineWorkbook.from_path(str(p))
        names = list(wb.sheet_names)
        order = sorted(names, key=lambda n: (n != SHEET_COMPLAINTS, names.index(n)))
        failure: NotAComplaintWorkbook | None = None
        for name in order:
            if name in (SHEET_SETTINGS,):
                continue
            sheet = wb.get_sheet_by_name(name)
            grid = sheet.to_python()
            if not grid:
                continue
            start = sheet.start or (0, 0)
            try:
                table = table_from_grid(
                    grid, sheet=name, path=p, date1904=facts.date1904,
                    first_row=start[0] + 1, first_col=start[1],
                )
            except NotAComplaintWorkbook as exc:
                failure = failure or exc
                continue
            table.settings = with_workbook_holidays(_settings(wb, p), wb, p)  # 设置 + 节假日
            table.risk_words = _risk_words(wb, p)
            table.shop_code = table.settings.shop_code or None
            return table
    except (UnreadableWorkbook, BadSetting):
        raise
    except BaseException as exc:  # noqa: BLE001 - pyo3 PanicException derives from BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise UnreadableWorkbook(p, f"工作簿无法解析 ({type(exc).__name__}: {str(exc)[:200]})") from None
    raise NotAComplaintWorkbook(
        p, "不是投诉台账：没有任何工作表含有投诉表的表头（投诉编号、受理时间、客户姓名、投诉内容…）"
        " (no sheet has a complaint table header)")


def read_playbook(path: str | Path) -> Playbook:
    """The shop's own 处理手册 sheet when the workbook has one, else the default playbook."""
    check_xlsx(path)
    try:
        wb = CalamineWorkbook.from_path(str(path))
        if SHEET_PLAYBOOK not in wb.sheet_names:
            return DEFAULT_PLAYBOOK
        rows = wb.get_sheet_by_name(SHEET_PLAYBOOK).to_python()
    except BaseException as exc:  # noqa: BLE001 - see read_workbook
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise UnreadableWorkbook(path, f"处理手册无法读取 ({type(exc).__name__})") from None
    return playbook_from_rows(rows, sheet=f"{Path(path).name}!{SHEET_PLAYBOOK}")

