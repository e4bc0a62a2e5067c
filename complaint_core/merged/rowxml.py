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
from typing import Any

log = logging.getLogger(__name__)

EXCEL_MAX_STRING = 32_767
_EPOCH = datetime(1899, 12, 30)
_MODERN = datetime(1900, 3, 1)          # from here on, the serial is plain days since _EPOCH
_FIRST = datetime(1900, 1, 1)           # Excel's day 1; it cannot show anything earlier
_NEEDS_ESCAPE = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_")
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
    out: list[str] = []
    for row in rows:
        inner = cells.xml(row)
        out.append(f"<row>{inner}</row>" if inner else "<row/>")
        if len(out) >= chunk:
            yield "".join(out).encode("utf-8", "replace")
            out = []
    if out:
        yield "".join(out).encode("utf-8", "replace")


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

    def xml(self, row: list[Any], *, pad: bool = False, first: int = 0) -> str:
        """The cells of ``row`` (its first value in column ``first``); an empty cell between two
        values is ``<c/>`` so that later cells keep their column, and with ``pad`` trailing
        empty cells are ``<c/>`` too (a piece of a row that more cells follow)."""
        needs_escape = _NEEDS_ESCAPE.search
        half = EXCEL_MAX_STRING // 2
        modern, epoch = _MODERN, _EPOCH
        out: list[str] = []
        add = out.append
        following = 0               # the column a cell without ``r`` lands in
        for c, value in enumerate(row):
            kind = type(value)
            if kind is str:
                if not value:
                    continue
                if len(value) > half:
                    value = _fit(value)
                text = _escape(value) if needs_escape(value) else value
                if value.strip() is value:
                    cell = f'<c t="inlineStr"><is><t>{text}</t></is></c>'
                else:
                    cell = f'<c t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
            elif kind is datetime and value.tzinfo is None and value >= modern:
                d = value - epoch
                cell = f'{self._stamp_open}{d.days + (d.seconds + d.microseconds / 1e6) / 86400!r}</v></c>'
            elif value is None:
                continue
            else:
                cell = _cell(value, self._num_attr[first + c], self._styles)
            if c != following:      # empty cells before this one keep it in its column
                add("<c/>" * (c - following))
            following = c + 1
            add(cell)
        if pad and following < len(row):
            add("<c/>" * (len(row) - following))
        return "".join(out)

