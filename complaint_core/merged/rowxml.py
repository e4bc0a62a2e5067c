"""Stream the data rows of a big sheet as worksheet XML, several times faster than cell calls.

A merge of 100 shops is ~4 million cells; XlsxWriter spends ~7 µs on each ``write_*`` call,
so the manager would wait half a minute for the 全部投诉 sheet alone. XlsxWriter still writes
every sheet's frame (header, column formats, Table, dropdowns, charts); this module produces
only the ``<row>`` elements that go inside ``<sheetData>``, with the same cell semantics:
customer text is always an inline string (never a formula, never a link), control
characters are escaped the way Excel does (``_xHHHH_``), numbers carry their column's format.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from operator import is_not
from typing import Any

log = logging.getLogger(__name__)

EXCEL_MAX_STRING = 32_767
_EPOCH = datetime(1899, 12, 30)
_MODERN = datetime(1900, 3, 1)          # from here on, the serial is plain days since _EPOCH
_FIRST = datetime(1900, 1, 1)           # Excel's day 1; it cannot show anything earlier
_NEEDS_ESCAPE = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
_NEEDS_CHAR_ESCAPE = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]")
_LITERAL_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_CONTROL = re.compile(r"([\x00-\x08\x0b-\x1f])")


def _escape(text: str) -> str:
    if not _NEEDS_ESCAPE.search(text):
        return text
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Excel reads "_x0041_" as an escape: a customer who typed it literally must get it back
    text = _LITERAL_ESCAPE.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda m: f"_x{ord(m.group(1)):04X}_", text)
    return text.replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")


def _fit(text: str) -> str:
    # Excel's cell limit is 32,767 UTF-16 units; longer text would make Excel repair the file.
    if len(text) > EXCEL_MAX_STRING // 2 and len(text.encode("utf-16-le")) // 2 > EXCEL_MAX_STRING:
        log.warning("单元格文本超过 Excel 上限 32,767 字符，已截断 (cell text truncated)")
        cut = text[:EXCEL_MAX_STRING]
        while len(cut.encode("utf-16-le")) // 2 > EXCEL_MAX_STRING:
            cut = cut[:-1]
        return cut
    return text


def _serial(value: datetime) -> float | None:
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    if value < _FIRST:
        return None
    # Excel counts a 29 Feb 1900 that never was: January and February 1900 are one day lower
    d = value - (_EPOCH if value >= _MODERN else datetime(1899, 12, 31))
    return d.days + (d.seconds + d.microseconds / 1e6) / 86400


# Days 32768-65535 (1989-09-16 to 2079-06-06) are one binade: a serial's float has the same
# spacing for every day in it, so the digits after the point of a whole-second moment depend on
# its time of day only. Each time of day is written once (repr of 32768 + the day's fraction)
# and its digits reused for every day: the text is repr's, byte for byte (tests/test_rowxml.py
# checks every second of a day), at less than half the cost; a merge writes a million moments.
_BINADE = range(32768, 65536)
_FRACTIONS: dict[int, str] = {}


def _fraction(seconds: int) -> str:
    text = _FRACTIONS[seconds] = repr(32768 + seconds / 86400)[6:]
    return text


def _serial_text(value: datetime) -> str:
    """Excel's serial of a naive moment from 1 March 1900 on, as ``repr`` writes the float."""
    d = value - _EPOCH
    days = d.days
    if days in _BINADE and not d.microseconds:
        return f"{days}.{_FRACTIONS.get(d.seconds) or _fraction(d.seconds)}"
    return repr(_serial(value))


def text_cell(text: str) -> str:
    """One text cell (no ``r``): always text, never a formula, whatever the customer typed."""
    text = _fit(text)
    space = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
    return f'<c t="inlineStr"><is><t{space}>{_escape(text)}</t></is></c>'


def _cell(value: Any, style: str, styles: dict[str, int]) -> str:
    kind = type(value)
    if kind is str:
        return text_cell(value)
    if isinstance(value, date):
        stamp, style = (value, "datetime") if isinstance(value, datetime) else \
            (datetime(value.year, value.month, value.day), "date")
        serial = _serial(stamp)
        if serial is None:
            return text_cell(value.isoformat())
        return f'<c s="{styles[style]}"><v>{serial!r}</v></c>'
    if kind is bool:
        return f'<c t="b"><v>{int(value)}</v></c>'
    if kind is int or kind is float or isinstance(value, int | float | Decimal):
        number = float(value) if isinstance(value, Decimal) else value
        if isinstance(number, float) and not math.isfinite(number):
            return text_cell(str(value))   # Excel has no NaN/inf: show what the shop typed
        return f'<c{style}><v>{number!r}</v></c>'
    return text_cell(str(value))


def row_xml(rows: Iterable[list[Any]], number_styles: list[int | None], styles: dict[str, int], *,
            chunk: int = 2000) -> Iterator[bytes]:
    """UTF-8 chunks of ``<row>`` elements, written without row and cell numbers (``r``).

    ``number_styles[c]`` is the xf index numbers in column c wear (None: General);
    ``styles`` holds the xf indexes of the "datetime" and "date" formats.

    A reader places each row after the one before it and each cell after the one before it, so
    an empty cell between two values is written as ``<c/>`` and a row with no value is
    ``<row/>``. Such rows mean the same at any position in the sheet: a shop's rows compressed
    once can be reused as they are when another shop's rows above them change in number.
    """
    cells = Cells(number_styles, styles)
    pending = iter(rows)
    while batch := list(islice(pending, chunk)):
        yield "".join(cells.rows(batch)).encode("utf-8", "replace")


_NONE = type(None)
_TEXTS = frozenset({str, _NONE})
_STAMPS = frozenset({datetime, _NONE})
_NUMBERS = frozenset({int, float, _NONE})
_EMPTY = "<c/>"
# a text column whose first _SAMPLE cells hold at most _FEW values is taken for one of a few
_SAMPLE, _FEW = 64, 16


class Cells:
    """Un-numbered cells (no ``r``) for one sheet's columns: ``row_xml`` and the
    pieces of rows the render keeps between writes (a 逾期 row's fixed cells, e.g.)."""

    def __init__(self, number_styles: list[int | None], styles: dict[str, int]) -> None:
        self._num_attr = ["" if s is None else f' s="{s}"' for s in number_styles]
        self._stamp_open = f'<c s="{styles["datetime"]}"><v>'
        self._styles = styles

    def number(self, column: int, value: float) -> str:
        """One number cell in ``column``'s format."""
        return _cell(value, self._num_attr[column], self._styles)

    def one(self, value: Any, column: int) -> str:
        """One cell of ``column``; "" for an empty one (None or "")."""
        kind = type(value)
        if kind is str:
            return text_cell(value) if value else ""
        if kind is datetime and value.tzinfo is None and value >= _MODERN:
            return f"{self._stamp_open}{_serial_text(value)}</v></c>"
        if value is None:
            return ""
        return _cell(value, self._num_attr[column], self._styles)

    def xml(self, row: list[Any], *, pad: bool = False, first: int = 0) -> str:
        """The cells of ``row`` (its first value in column ``first``); an empty cell between two
        values is ``<c/>`` so that later cells keep their column, and with ``pad`` trailing
        empty cells are ``<c/>`` too (a piece of a row that more cells follow)."""
        out: list[str] = []
        following = 0               # the column a cell without ``r`` lands in
        for c, value in enumerate(row):
            cell = self.one(value, first + c)
            if not cell:
                continue
            if c != following:      # empty cells before this one keep it in its column
                out.append(_EMPTY * (c - following))
            following = c + 1
            out.append(cell)
        if pad and following < len(row):
            out.append(_EMPTY * (len(row) - following))
        return "".join(out)

    def rows(self, rows: list[list[Any]]) -> list[str]:
        """``<row>…</row>`` (``<row/>`` when empty) for each of ``rows``."""
        return [f"<row>{inner}</row>" if inner else "<row/>" for inner in self.many(rows)]

    def many(self, rows: list[list[Any]], *, pad: bool = False, first: int = 0) -> list[str]:
        """What ``xml`` gives for each of ``rows``, made a column at a time. A column's cells are
        mostly of one type, so the checks a text needs (escapes, edge spaces, length) run once
        over the column, in C, instead of once per cell: a merge of 100 shops writes 4 million
        cells (issue 17)."""
        widths = set(map(len, rows))
        if len(widths) != 1 or not 0 < min(widths) <= len(self._num_attr) - first:   # ragged: row by row
            return [self.xml(row, pad=pad, first=first) for row in rows]
        columns = [self._column(first + c, values) for c, values in enumerate(zip(*rows, strict=True))]
        out = list(map("".join, zip(*columns, strict=True)))
        if not pad and _EMPTY in columns[-1]:   # a row's trailing empty cells are left out, as in ``xml``
            out = [_drop_trailing(x) if x.endswith(_EMPTY) else x for x in out]
        return out

    def _column(self, c: int, values: tuple[Any, ...]) -> list[str]:
        """Column ``c``'s cells, ``<c/>`` for an empty one."""
        kinds = set(map(type, values))
        if kinds <= _TEXTS:
            if len(values) >= _SAMPLE and len(set(values[:_SAMPLE])) <= _FEW:
                # a column of a few values (门店, 类别, 状态, …: half of 全部投诉's) is made once
                # per value and looked up for each cell
                distinct = tuple(set(values))
                if len(distinct) <= len(values) // 8:
                    made = dict(zip(distinct, self._column(c, distinct), strict=True))
                    return list(map(made.__getitem__, values))
            texts: list[str] = list(filter(None, values))
            if _plain(texts):
                return [f'<c t="inlineStr"><is><t>{v}</t></is></c>' if v else _EMPTY for v in values]
        elif kinds <= _STAMPS:
            stamps: list[datetime] = list(filter(None, values))
            try:   # naive and after Feb 1900 all of them (naive and aware together cannot be compared)
                plain = bool(stamps) and stamps[0].tzinfo is None and min(stamps) >= _MODERN
            except TypeError:
                plain = False
            if plain:
                head, serial = self._stamp_open, _serial_text
                return [f"{head}{serial(v)}</v></c>" if v is not None else _EMPTY for v in values]
        elif kinds <= _NUMBERS:
            try:   # Excel has no NaN or infinity: those are shown as text, one by one below
                plain = all(map(math.isfinite, filter(_is_not_none, values)))
            except OverflowError:   # an int too big for a float
                plain = False
            if plain:
                attr = self._num_attr[c]
                return [f"<c{attr}><v>{v!r}</v></c>" if v is not None else _EMPTY for v in values]
        one = self.one
        return [one(v, c) or _EMPTY for v in values]


def _is_not_none(value: Any) -> bool:
    return value is not None


def _plain(texts: list[str]) -> bool:
    """Whether every one of ``texts`` goes into a cell as it is: nothing to escape, no space at
    either end, not over half Excel's limit (only then is the length in UTF-16 worth counting)."""
    if not texts:
        return True
    joined = "\n".join(texts)   # a newline needs no escape and is no edge of a text in the middle
    if _NEEDS_CHAR_ESCAPE.search(joined) or ("_x" in joined and _LITERAL_ESCAPE.search(joined)):
        return False
    if any(map(is_not, map(str.strip, texts), texts)):
        return False
    # the joined length bounds every text's: counted one by one only for a column of long texts
    return len(joined) <= EXCEL_MAX_STRING // 2 or max(map(len, texts)) <= EXCEL_MAX_STRING // 2


def _drop_trailing(inner: str) -> str:
    while inner.endswith(_EMPTY):
        inner = inner[:-len(_EMPTY)]
    return inner
