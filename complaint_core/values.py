"""Turn a cell as a reader gives it into the field's canonical value.

Shops type dates every way Chinese Excel users do (2026年11月19日 14:30, 2026/11/19,
full-width digits), phone numbers end up as floats, money as '¥1,200元'. Nothing here
raises for cell content: what cannot be understood comes back as ``Invalid`` so the
validator can name the cell, and the value is never dropped.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime, time, timedelta
from typing import Any

from .model import Invalid
from .schema import FIELD_BY_KEY, choice_value

_EPOCH_1900 = datetime(1899, 12, 30)
_EPOCH_1904 = datetime(1904, 1, 1)

_DT_RE = re.compile(
    r"^\s*(\d{4})\s*[年/\-.]\s*(\d{1,2})\s*[月/\-.]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]*(?:(上午|下午|晚上|中午)\s*)?(\d{1,2})\s*[:：时点]\s*(\d{1,2})?\s*分?"
    r"(?:\s*[:：]\s*(\d{1,2})(?:\.\d+)?\s*秒?)?)?\s*$"
)
_COMPACT_RE = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})(?:\s*(\d{2}):?(\d{2})(?::?(\d{2}))?)?\s*$")
_MONEY_STRIP = re.compile(r"[¥￥$,，\s元圆人民币RMBrmbCNYcny]")


def fold_digits(text: str) -> str:
    """Full-width digits, letters and punctuation to their ASCII forms (NFKC)."""
    return unicodedata.normalize("NFKC", text)


def excel_serial_to_datetime(serial: float, *, date1904: bool = False) -> datetime:
    base = _EPOCH_1904 if date1904 else _EPOCH_1900
    # Round to the second: Excel keeps fractions of a day that print as :59.999.
    return base + timedelta(seconds=round(serial * 86400))


# The moments a complaint can have: Excel's serials from 1900 on, and nothing past 2200 (the
# same bounds as a serial number typed into a date cell). 9999-12-31 typed for "never", or a
# year typed as 0026, is a typo the checks report (bad_datetime), not a date: a deadline worked
# out from it overflowed Python's calendar, and the whole shop file was refused for that cell.
EARLIEST = datetime(1900, 1, 1)
LATEST = datetime(2200, 1, 1)


def parse_datetime(raw: Any, *, date1904: bool = False) -> datetime | None | Invalid:
    got = _parse_datetime(raw, date1904=date1904)
    if type(got) is datetime and not EARLIEST <= got < LATEST:
        return Invalid(raw, "bad_datetime")
    return got


def _parse_datetime(raw: Any, *, date1904: bool = False) -> datetime | None | Invalid:
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return raw.replace(tzinfo=None, microsecond=0)
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day)
    if isinstance(raw, time):
        return Invalid(raw, "bad_datetime")  # a time without a day cannot be placed
    if isinstance(raw, bool):
        return Invalid(raw, "bad_datetime")
    if isinstance(raw, int | float):
        # Serials between 1900-01-01 and 2200 only; anything else is a typo, not a date.
        if 1 <= raw < 110000:
            return excel_serial_to_datetime(float(raw), date1904=date1904)
        return Invalid(raw, "bad_datetime")
    text = fold_digits(str(raw)).strip()
    if not text:
        return None
    m = _DT_RE.match(text)
    if m:
        y, mo, d, ampm, hh, mm, ss = m.groups()
        hour = int(hh) if hh else 0
        if ampm in ("下午", "晚上") and hour < 12:
            hour += 12
        try:
            return datetime(int(y), int(mo), int(d), hour, int(mm or 0), int(ss or 0))
        except ValueError:
            return Invalid(raw, "bad_datetime")
    m = _COMPACT_RE.match(text)
    if m:
        y, mo, d, hh, mm, ss = m.groups()
        try:
            return datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0))
        except ValueError:
            return Invalid(raw, "bad_datetime")
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None, microsecond=0)
    except ValueError:
        pass
    try:
        serial = float(text)
    except ValueError:
        return Invalid(raw, "bad_datetime")
    if not math.isfinite(serial):   # "NAN" or "inf" typed as text: kept as typed, not as a float
        return Invalid(raw, "bad_datetime")
    return parse_datetime(serial, date1904=date1904)


def parse_money(raw: Any) -> float | int | None | Invalid:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return Invalid(raw, "bad_number")
    if isinstance(raw, int | float):
        return int(raw) if float(raw).is_integer() else float(raw)
    text = _MONEY_STRIP.sub("", fold_digits(str(raw)))
    if not text:
        return None if not str(raw).strip() else Invalid(raw, "bad_number")
    try:
        value = float(text)
    except ValueError:
        return Invalid(raw, "bad_number")
    return int(value) if value.is_integer() else value


def no_nul(text: str) -> str:
    """``text`` without NUL characters. A cell cannot hold one as typed, but an xlsx can
    (``_x0000_``), and PostgreSQL refuses any text that has one: that one cell stopped a whole
    merge there."""
    return text.replace("\x00", "").strip() if "\x00" in text else text


def text_value(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, float):
        # A phone number typed into a number cell reads back as 13800138000.0.
        if raw.is_integer():
            return str(int(raw))
        return repr(raw)
    if isinstance(raw, datetime):
        return raw.strftime("%Y-%m-%d %H:%M")
    text = no_nul(str(raw).strip())
    return text or None


def parse_choice(key: str, raw: Any) -> str | None | Invalid:
    text = text_value(raw)
    if text is None:
        return None
    value = choice_value(FIELD_BY_KEY[key], text)
    return value if value is not None else Invalid(raw, "bad_choice")


def normalise(key: str, raw: Any, *, date1904: bool = False) -> Any:
    """The canonical value of field ``key`` for a cell value ``raw`` (None when empty)."""
    kind = FIELD_BY_KEY[key].type
    if kind == "datetime":
        return parse_datetime(raw, date1904=date1904)
    if kind == "money":
        return parse_money(raw)
    if kind == "choice":
        return parse_choice(key, raw)
    return text_value(raw)
