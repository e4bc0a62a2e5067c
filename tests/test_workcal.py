"""Business-hours arithmetic against the real 2025/2026 State Council holiday calendar."""

from datetime import date, datetime, time, timedelta

from complaint_core.settings import DEFAULTS
from complaint_core.workcal import add_business_days, add_business_time, is_workday

BIZ = DEFAULTS.with_(business_hours=True)


def test_plain_clock_time_when_business_hours_off():
    start = datetime(2026, 9, 30, 17, 30)
    assert add_business_time(start, timedelta(hours=2), DEFAULTS) == datetime(2026, 9, 30, 19, 30)
    assert add_business_days(start, 3, DEFAULTS) == datetime(2026, 10, 3, 17, 30)


def test_real_holidays_and_make_up_days():
    assert not is_workday(date(2026, 10, 1), BIZ)       # 国庆节
    assert not is_workday(date(2026, 10, 7), BIZ)
    assert is_workday(date(2026, 10, 10), BIZ)          # 调休: a Saturday worked
    assert is_workday(date(2025, 9, 28), BIZ)           # 2025 国庆调休 Sunday
    assert not is_workday(date(2025, 10, 8), BIZ)
    # Without the holiday calendar only the weekly rest days count.
    assert is_workday(date(2026, 10, 1), BIZ.with_(cn_holidays=False))
    assert not is_workday(date(2026, 10, 10), BIZ.with_(cn_holidays=False))


def test_years_beyond_the_calendar_fall_back_to_weekdays():
    assert is_workday(date(2031, 1, 1), BIZ)            # a Wednesday; the package has no 2031 data
    assert not is_workday(date(2031, 1, 4), BIZ)        # Saturday


def test_hours_carry_over_the_evening_and_national_day():
    # Received 17:30 on the last working day before 国庆 2026 (1-7 Oct off): 30 minutes today,
    # the other 90 on Thu 8 Oct, the first working day after the break.
    got = add_business_time(datetime(2026, 9, 30, 17, 30), timedelta(hours=2), BIZ)
    assert got == datetime(2026, 10, 8, 10, 30)


def test_received_at_night_or_weekend_starts_at_opening():
    got = add_business_time(datetime(2026, 11, 21, 22, 0), timedelta(hours=2), BIZ)  # Saturday night
    assert got == datetime(2026, 11, 23, 11, 0)
    custom = BIZ.with_(workday_start=time(10, 0), workday_end=time(20, 0), rest_weekdays=(0,),
                       cn_holidays=False)
    assert add_business_time(datetime(2026, 11, 22, 19, 0), timedelta(hours=2), custom) == \
        datetime(2026, 11, 24, 11, 0)                   # Sunday open, Monday rest


def test_days_count_working_days_and_keep_the_time():
    # Thu 2026-09-24 15:00 + 3 working days skips 中秋 (25-27 Sep): Mon 28, Tue 29, Wed 30.
    assert add_business_days(datetime(2026, 9, 24, 15, 0), 3, BIZ) == datetime(2026, 9, 30, 15, 0)
    # Across 国庆: Wed 30 Sep -> Thu 8, Fri 9, Sat 10 Oct (a 调休 working Saturday).
    assert add_business_days(datetime(2026, 9, 30, 15, 0), 3, BIZ) == datetime(2026, 10, 10, 15, 0)
    # A time outside hours moves to the next business moment.
    assert add_business_days(datetime(2026, 11, 16, 20, 0), 3, BIZ) == datetime(2026, 11, 20, 9, 0)


def test_settings_without_working_time_are_refused():
    import pytest

    from complaint_core.errors import BadSetting

    with pytest.raises(BadSetting, match="下班时间"):
        add_business_time(datetime(2026, 11, 23, 10), timedelta(hours=2),
                          BIZ.with_(workday_start=time(18, 0), workday_end=time(9, 0)))
    with pytest.raises(BadSetting, match="休息日"):
        add_business_days(datetime(2026, 11, 23, 10), 3, BIZ.with_(rest_weekdays=tuple(range(7))))
