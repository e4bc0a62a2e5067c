"""Business hours, rest days and Chinese public holidays with make-up working days (调休).

Which days are working days: the shop's own 节假日 sheet first (``Settings.holidays``), then
the chinese-calendar package, then the weekly rest days for years neither knows (validate
warns about those, see complaint_core.holidays).

By default deadlines are plain clock time, as the handling rules state them ("2小时内",
"3日内"). A shop that counts only working time switches ``business_hours`` on; then a
complaint received on Friday evening is due on Monday morning, and the National Day week
is skipped while its make-up Saturday counts as a working day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache

from .errors import BadSetting
from .holidays import day_map
from .settings import Settings


def is_workday(day: date, settings: Settings) -> bool:
    # The shop's 节假日 sheet first: it knows next year's days before the package does, and
    # the shop's own closing days, which no public calendar has.
    if settings.holidays:
        own = day_map(settings.holidays).get(day)
        if own is not None:
            return own
    return _is_workday(day, tuple(settings.rest_weekdays), bool(settings.cn_holidays))


@lru_cache(maxsize=8192)
def _is_workday(day: date, rest_weekdays: tuple[int, ...], cn_holidays: bool) -> bool:
    # Cached: a 10,000-row sheet asks about the same few hundred days over and over.
    if cn_holidays:
        try:
            import chinese_calendar

            return bool(chinese_calendar.is_workday(day))
        except (NotImplementedError, ImportError):
            # The package only knows the years the State Council has published; beyond them
            # fall back to the weekly rest days rather than refusing to compute a deadline.
            pass
    return day.weekday() not in rest_weekdays


def _check(settings: Settings) -> None:
    """A business-hours set-up with no working time would never reach a deadline: say so."""
    if settings.workday_end <= settings.workday_start:
        raise BadSetting("设置!下班时间", settings.workday_end, "下班时间须晚于上班时间 (workday end must follow start)")
    if set(range(7)) <= set(settings.rest_weekdays):
        raise BadSetting("设置!休息日", settings.rest_weekdays, "每周至少要有一个工作日 (no working weekday)")


def _next_open(moment: datetime, settings: Settings) -> datetime:
    """The first business moment at or after ``moment``."""
    start, end = settings.workday_start, settings.workday_end
    for _ in range(400):
        day = moment.date()
        if is_workday(day, settings):
            opens = datetime.combine(day, start)
            closes = datetime.combine(day, end)
            if moment < opens:
                return opens
            if moment < closes:
                return moment
        moment = datetime.combine(day + timedelta(days=1), start)
    return moment


def add_business_time(start: datetime, delta: timedelta, settings: Settings) -> datetime:
    """``start`` + ``delta`` counting only business hours when the shop asks for it."""
    if not settings.business_hours:
        return start + delta
    _check(settings)
    remaining = delta
    moment = _next_open(start, settings)
    for _ in range(10_000):
        closes = datetime.combine(moment.date(), settings.workday_end)
        available = closes - moment
        if remaining <= available:
            return moment + remaining
        remaining -= available
        moment = _next_open(closes + timedelta(seconds=1), settings)
    return moment


def add_business_days(start: datetime, days: float, settings: Settings) -> datetime:
    """``days`` working days later at the same time of day (plain days when not in business mode)."""
    if not settings.business_hours:
        return start + timedelta(days=days)
    _check(settings)
    whole = int(days)
    moment = start
    added = 0
    while added < whole:
        moment += timedelta(days=1)
        if is_workday(moment.date(), settings):
            added += 1
    moment += timedelta(days=days - whole)
    return _next_open(moment, settings)
