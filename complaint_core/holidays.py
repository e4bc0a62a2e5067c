"""The shop's own holidays and make-up working days (the 节假日 sheet: 日期 | 类型 | 说明).

The State Council publishes next year's holidays and 调休 in November or December, and the
chinese-calendar package only knows them from its next release on. Until then a shop that
counts business hours would see New Year's Day and the Spring Festival week counted as
working days. The 节假日 sheet lets the shop enter the days itself: its rows win over the
built-in calendar for those days, and years that neither knows are reported once per
workbook (see ``uncovered_years``) instead of being silently counted as plain weeks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadSetting
from .schema import normalise_header
from .settings import Settings
from .values import parse_datetime

if TYPE_CHECKING:
    from python_calamine import CalamineWorkbook

SHEET_HOLIDAYS = "节假日"
HEADER = ("日期", "类型", "说明")
REST, WORK = "休息", "上班"
# Folded spellings of the two types (Chinese first, the English a technical person may type).
_TYPES = {normalise_header(x): False for x in (REST, "放假", "休", "假", "holiday", "rest", "off")}
_TYPES |= {normalise_header(x): True for x in (WORK, "班", "调休上班", "补班", "work", "workday", "working")}
_HEADER_WORDS = {normalise_header(x) for x in ("日期", "date")}

log = logging.getLogger("complaint_core.holidays")

Holidays = tuple[tuple[date, bool], ...]
"""(day, is_workday) pairs sorted by day: hashable, and only dates and bools (JSON-friendly)."""


def holidays_from_rows(rows: list[list[Any]], *, sheet: str = SHEET_HOLIDAYS) -> Holidays:
    """The 节假日 sheet's rows as (day, is_workday) pairs.

    A row without a date is a note or a placeholder the template left for the shop to fill
    (the 2027 days before the State Council's notice) and is skipped; a date with a type
    that is neither 休息 nor 上班, or one day listed as both, is refused with its cell.
    """
    days: dict[date, tuple[bool, int]] = {}
    for i, row in enumerate(rows, start=1):
        if not row:
            continue
        raw = row[0]
        if raw is None or (isinstance(raw, str) and (not raw.strip() or normalise_header(raw) in _HEADER_WORDS)):
            continue
        when = parse_datetime(raw)
        if not isinstance(when, datetime):
            raise BadSetting(f"{sheet}!A{i}", raw, "“日期”不是有效的日期，应如 2027-01-01 (not a date)")
        kind = row[1] if len(row) > 1 else None
        is_work = _TYPES.get(normalise_header(kind)) if isinstance(kind, str) else None
        if is_work is None:
            raise BadSetting(f"{sheet}!B{i}", kind, f"“类型”应为“{REST}”或“{WORK}” (type must be rest or work)")
        day = when.date()
        if day in days and days[day][0] != is_work:
            raise BadSetting(f"{sheet}!B{i}", kind, f"{day} 在第 {days[day][1]} 行已填为另一类型 (listed twice)")
        days.setdefault(day, (is_work, i))
    return tuple(sorted((d, w) for d, (w, _i) in days.items()))


@lru_cache(maxsize=64)
def day_map(holidays: Holidays) -> dict[date, bool]:
    """The pairs as a dict, built once per shop's list (workcal asks about every day)."""
    return dict(holidays)


def builtin_years() -> tuple[int, int] | None:
    """(first, last) year the installed chinese-calendar knows, or None when it is missing."""
    return _builtin_years()


@lru_cache(maxsize=1)
def _builtin_years() -> tuple[int, int] | None:
    try:
        import chinese_calendar
    except ImportError:
        return None
    # the package's own range check uses its holiday list, so the same list says what it knows
    known = [d.year for d in chinese_calendar.holidays]
    return (min(known), max(known)) if known else None


def builtin_version() -> str:
    try:
        import chinese_calendar
    except ImportError:
        return "未安装 (not installed)"
    return str(getattr(chinese_calendar, "__version__", "?"))


def uncovered_years(years: Iterable[int], holidays: Holidays) -> list[int]:
    """The years among ``years`` that neither the shop's sheet nor chinese-calendar knows."""
    sheet = {d.year for d, _w in holidays}
    known = builtin_years()
    return sorted(y for y in set(years)
                  if y not in sheet and (known is None or not known[0] <= y <= known[1]))


def log_uncovered(years: list[int], where: str) -> None:
    """Tell the technical person which release would know these years (one log line)."""
    known = builtin_years()
    span = f"{known[0]}–{known[1]}" if known else "无 (none)"
    log.warning(
        "%s: %s 年的法定节假日未知：已安装 chinese-calendar %s 只含 %s 年；国务院公布放假安排后（通常前一年 11–12 月）"
        "发布的 chinese-calendar 新版（高于 %s，pip install -U chinese-calendar）会包含，或在“%s”表中填写。"
        " / Holidays of %s unknown: chinese-calendar %s knows %s; a release after %s (once the State Council "
        "publishes the year) will know them, or fill the %s sheet.",
        where, "、".join(map(str, years)), builtin_version(), span, builtin_version(), SHEET_HOLIDAYS,
        ", ".join(map(str, years)), builtin_version(), span, builtin_version(), SHEET_HOLIDAYS)


def with_workbook_holidays(settings: Settings, wb: CalamineWorkbook, path: str | Path) -> Settings:
    """``settings`` plus the 节假日 sheet of an open calamine workbook (unchanged without one)."""
    if SHEET_HOLIDAYS not in wb.sheet_names:
        return settings
    rows = wb.get_sheet_by_name(SHEET_HOLIDAYS).to_python()
    return replace(settings, holidays=holidays_from_rows(rows, sheet=f"{Path(path).name}!{SHEET_HOLIDAYS}"))


def holiday_rows_for_template() -> list[list[str]]:
    """The template's 节假日 sheet: the header and rows for the shop to fill.

    The State Council had not published the 2027 days when this template was made, so the
    rows name the holidays and leave the dates empty rather than guess them.
    """
    note = "国务院公布 2027 年放假安排后填写日期（每天一行）；填写后覆盖内置日历"
    return [
        list(HEADER),
        ["", REST, f"2027 年元旦：{note} / New Year 2027: fill in once published, one row per day"],
        ["", REST, f"2027 年春节：{note} / Spring Festival 2027: each day off"],
        ["", WORK, f"2027 年春节调休上班日（周末上班）：{note} / Spring Festival 2027: make-up working days"],
        ["", REST, "本店自定的休息日（如店休）也可写在这里 / The shop's own closing days"],
    ]
