from datetime import date, datetime, time

import pytest

from complaint_core.model import Invalid
from complaint_core.values import normalise, parse_datetime, parse_money


@pytest.mark.parametrize("raw", [
    "2026年11月19日 14:30", "2026/11/19 14:30", "2026-11-19 14:30", "2026.11.19 14:30",
    "２０２６－１１－１９　１４：３０", "2026年11月19日14时30分", "2026-11-19T14:30:00", "2026年11月19日 下午2:30",
    datetime(2026, 11, 19, 14, 30), 46345.604166666664,
])
def test_datetime_forms(raw):
    assert parse_datetime(raw) == datetime(2026, 11, 19, 14, 30)


def test_date_only_forms():
    assert parse_datetime("2026/11/19") == datetime(2026, 11, 19)
    assert parse_datetime(date(2026, 11, 19)) == datetime(2026, 11, 19)
    assert parse_datetime("20261119") == datetime(2026, 11, 19)


def test_1904_serial():
    # The same serial is four years and a day later in a Mac 1904-epoch book.
    assert parse_datetime(45000.0) == datetime(2023, 3, 15)
    assert parse_datetime(45000.0, date1904=True) == datetime(2027, 3, 16)


@pytest.mark.parametrize("raw", ["2026年13月1日", "昨天下午", "not a date", time(9, 30), -5, 2e9, "2026-02-30"])
def test_bad_datetimes_are_kept_as_invalid(raw):
    value = parse_datetime(raw)
    assert isinstance(value, Invalid) and value.code == "bad_datetime" and value.raw == raw


@pytest.mark.parametrize("raw, expected", [
    ("¥1,200.50", 1200.5), ("1200元", 1200), ("￥３００", 300), (88.0, 88), (12.5, 12.5), ("-5", -5), ("", None),
])
def test_money(raw, expected):
    assert parse_money(raw) == expected


def test_money_invalid():
    assert parse_money("三百") == Invalid("三百", "bad_number")


def test_choices_in_chinese_english_and_full_width():
    assert normalise("channel", "电话") == "电话"
    assert normalise("channel", "phone") == "电话"
    assert normalise("customer_mood", " Angry ") == "愤怒"
    assert normalise("status", "ＮＥＷ") == "新建"
    assert normalise("channel", "飞鸽传书") == Invalid("飞鸽传书", "bad_choice")


def test_text_keeps_phone_digits_from_number_cells():
    assert normalise("customer_phone", 13800138000.0) == "13800138000"
    assert normalise("complaint_id", "  0001 ") == "0001"
    assert normalise("notes", None) is None
