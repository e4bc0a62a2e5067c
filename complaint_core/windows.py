"""A big sheet of an xlsx read by python-calamine a window of rows at a time (issue 17).

calamine builds a sheet's whole range before the first row can be taken: 64 MiB for a shop
with 30,000 complaints in one workbook, beside the 50 MiB of rows made from it. A reading
child's memory then grew with the size of the shop's file. Here the sheet's XML is cut, at
its row elements, into windows of ``WINDOW_ROWS`` rows; each window goes into a copy of the
package beside its other parts (shared strings, styles, the workbook's date system) and
calamine reads that copy: every cell reads exactly as calamine reads it in the whole file.

Each window is given only the shared strings its cells name (``_Strings``): calamine parses a
workbook's whole shared-string table each time it opens one, 20 MiB of strings at 30,000
complaints, held while the window's range is built. The table is copied once into a scratch
file with where each string lies; a window's string cells are renumbered into a small table of
their own strings, copied as they are. Where a table or a window is not plain enough to be sure
calamine counts its strings the same way (a string without text, a comment, a cell whose
number is not where it is looked for), the window is given the whole table, as calamine
reads it in the file.

A sheet this module cannot cut safely (a row without its number, no sheetData) raises
``NotWindowed``: its reader reads it whole, as before.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from python_calamine import CalamineWorkbook

from .bounds import sheet_parts

__all__ = ["BIG_SHEET", "WINDOW_ROWS", "NotWindowed", "big_sheets", "windows"]

# bytes of a sheet's XML from which it is read in windows: about 5,500 complaints of the bench's
# (its 30,000 take 34 MB); below, the whole sheet reads faster (3,000 complaints: 0.16 s whole,
# 0.30 s in windows) for a few MiB more
BIG_SHEET = 6 << 20
# rows a window: a reading child's peak for 30,000 complaints was 100 MiB with 2,000, 92 with
# 1,000, 89 with 500, in the same time (2.7 s; each window opens a package of its own strings)
WINDOW_ROWS = 1_000
_READ = 1 << 20

_SHEET_DATA = re.compile(rb"<((?:\w+:)?)sheetData\b[^>]*?(/?)>")
_ROW = re.compile(rb"<(?:\w+:)?row\b([^>]*)>")
_ROW_NUMBER = re.compile(rb'\sr="[0-9]+"')
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\b[^>]*?/>")


# the part calamine takes the shared strings from, whatever the workbook's relationships say
_SST = "xl/sharedstrings.xml"
_SST_OPEN = re.compile(rb"<((?:\w+:)?)sst\b[^>]*>")
_SI_ANY = re.compile(rb"<(?:\w+:)?si[\s>/]")
# a string calamine keeps: its first element a text or a run (an <si/>, or one of only
# phonetic text, it skips, and every later string's number would move)
_SI_KEPT = re.compile(rb"<(?:\w+:)?si>\s*<(?:\w+:)?[tr][\s>/].*?</(?:\w+:)?si\s*>", re.S)
_SI_CLOSE = re.compile(rb"</(?:\w+:)?si\s*>")
_NOT_UTF8 = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"'](?!utf-8[\"'])", re.I)
# a cell of a shared string, its number where calamine reads it, and every mention of the type
_S_CELL = re.compile(rb"(<(?:\w+:)?c\b[^>]*?\st\s*=\s*[\"']s[\"'][^>]*>\s*<(?:\w+:)?v>)([0-9]+)(?=</)")
_S_TYPE = re.compile(rb"\st\s*=\s*[\"']s[\"']")


class NotWindowed(Exception):
    """The sheet is not one to cut into windows (the reason says why): read it whole."""


def big_sheets(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its part, for each worksheet whose XML is ``BIG_SHEET`` bytes or more."""
    out: dict[str, str] = {}
    for part, name in sheet_parts(zf).items():
        try:
            info = zf.getinfo(part)
        except KeyError:
            continue
        if info.file_size >= BIG_SHEET:
            out[name] = part
    return out


class _Strings:
    """A workbook's shared strings (zip part ``part``) in a scratch file, with where each lies."""

    def __init__(self, src: IO[bytes], part: str, scratch: Path) -> None:
        self.part = part
        self.path = scratch
        # start, end of each string's <si> element: 4 bytes do, a package is at most 1 GiB
        # unpacked (``safety.MAX_TOTAL_UNCOMPRESSED``, checked before a file is read)
        self.spans = array("I")
        self.head = b""
        self.tail = b""
        plain, data, at = True, b"", 0
        with open(scratch, "wb") as out:
            while True:
                chunk = src.read(_READ)
                out.write(chunk)   # the whole table, for windows to be given whole if need be
                if plain:
                    plain, data, at = self._take(data + chunk, at, ended=not chunk)
                if not chunk:
                    break
        self.plain = plain

    def _take(self, data: bytes, at: int, *, ended: bool) -> tuple[bool, bytes, int]:
        """Note where the strings of ``data`` lie (the table from byte ``at`` on), up to the
        last whole one: (the table is plain so far, what is left of ``data``, where that starts)."""
        if not self.head:
            opened = _SST_OPEN.search(data)
            if opened is None:
                return not ended and len(data) < 64 * _READ, data, at
            if (data.startswith((b"\xff\xfe", b"\xfe\xff")) or _NOT_UTF8.match(data)
                    or b"<!" in data[:opened.start()] or opened.group(0).endswith(b"/>")):
                return False, b"", at
            self.head = data[:opened.end()]
            self.tail = b"</" + opened.group(1) + b"sst>"
            at += opened.end()
            data = data[opened.end():]
        cut = len(data) if ended else self._last_close(data)
        region = data[:cut]
        if b"<!" in region or b"<?" in region:
            return False, b"", at   # a comment or CDATA may hold what looks like a string
        spans = [m.span() for m in _SI_KEPT.finditer(region)]
        if len(spans) != len(_SI_ANY.findall(region)):
            return False, b"", at
        for start, end in spans:
            self.spans.append(at + start)
            self.spans.append(at + end)
        rest = data[cut:]
        if ended:   # nothing but the table's end after its last string
            return not rest.strip(b" \t\r\n").replace(self.tail, b"").strip(), b"", at + cut
        return len(rest) <= 64 * _READ, rest, at + cut   # one string of 64 MB: not a table to trust

    @staticmethod
    def _last_close(data: bytes) -> int:
        """Where the last ``</si>`` in ``data`` ends (0: none)."""
        i = len(data)
        while True:
            i = data.rfind(b"</", 0, i)
            if i < 0:
                return 0
            m = _SI_CLOSE.match(data, i)
            if m is not None:
                return m.end()

    def renumbering(self) -> _Renumbering | None:
        """What renumbers one window's string cells; None: windows are given the whole table."""
        return _Renumbering(self) if self.plain else None

    def strings(self, numbers: list[int]) -> bytes:
        """A table of these strings, in this order, each as it is in the workbook's table."""
        spans = self.spans
        with open(self.path, "rb") as fh:
            fd = fh.fileno()
            table = [os.pread(fd, spans[2 * n + 1] - spans[2 * n], spans[2 * n]) for n in numbers]
        return b"".join([self.head, *table, self.tail])


class _Renumbering:
    """One window's string cells, renumbered row by row into a table of their own strings."""

    def __init__(self, strings: _Strings) -> None:
        self._strings = strings
        self._count = len(strings.spans) // 2
        self._local: dict[bytes, bytes] = {}   # the cell's number in the workbook -> in the window
        self._order: list[int] = []             # the window's strings: their numbers in the workbook
        self.whole = False                      # the window is given the workbook's whole table

    def row(self, element: bytes, before: list[bytes]) -> bytes:
        """``element`` with its string cells renumbered; should it hold one that cannot be,
        the rows of the window ``before`` it are given their first numbers back, and the window
        the whole table."""
        if self.whole:
            return element
        pieces = _S_CELL.split(element)
        numbers = pieces[2::3]
        if len(numbers) != len(_S_TYPE.findall(element)):
            return self._give_up(element, before)   # a string cell not written as looked for
        local = self._local
        for number in numbers:
            if number not in local:
                n = int(number)
                if n >= self._count:
                    return self._give_up(element, before)   # calamine's own answer past the table
                local[number] = b"%d" % len(self._order)
                self._order.append(n)
        if not numbers:
            return element
        pieces[2::3] = [local[n] for n in numbers]
        return b"".join(pieces)

    def _give_up(self, element: bytes, before: list[bytes]) -> bytes:
        self.whole = True
        order = self._order
        back = {b"%d" % i: b"%d" % n for i, n in enumerate(order)}

        def first(row: bytes) -> bytes:
            pieces = _S_CELL.split(row)
            pieces[2::3] = [back[n] for n in pieces[2::3]]
            return b"".join(pieces)

        before[:] = [first(row) for row in before]
        return element

    def table(self) -> bytes | None:
        """The window's own table; None: the whole table."""
        return None if self.whole else self._strings.strings(self._order)


def _row_elements(fh: Any, close: bytes, buf: bytes) -> Iterator[bytes]:
    """The row elements after ``<sheetData>`` one at a time (``buf``: what was read of them
    already, then ``fh``), each with what follows it up to the next (whitespace), until
    ``close`` (``</sheetData>``)."""
    at = 0
    ended = False
    while True:
        start = _ROW.search(buf, at)
        if start is None or start.start() != at:
            # what lies between rows must be space, or the end of the rows
            gap = buf[at:start.start()] if start is not None else buf[at:]
            end = gap.find(close)
            if end >= 0:
                if gap[:end].strip():
                    raise NotWindowed("the sheet's rows hold something else than rows")
                return
            if start is not None and gap.strip():
                raise NotWindowed("the sheet's rows hold something else than rows")
        if start is not None:
            if not _ROW_NUMBER.search(start.group(1)):
                raise NotWindowed("a row without its number")
            nxt = _ROW.search(buf, start.end())
            if nxt is not None:   # a row never holds another: the next one starts after it
                yield buf[start.start():nxt.start()]
                at = nxt.start()
                continue
            stop = buf.find(close, start.end())
            if stop >= 0:
                yield buf[start.start():stop]
                return
        if ended:
            raise NotWindowed("the sheet ends inside its rows")
        chunk = fh.read(_READ)
        ended = not chunk
        buf = buf[at:] + chunk
        at = 0


def _windows_xml(zf: zipfile.ZipFile, part: str, rows: int,
                 strings: _Strings | None) -> Iterator[tuple[bytes, bytes | None]]:
    """The sheet's XML as windows of ``rows`` rows, each a whole worksheet, with the table of
    its strings (None: the workbook's whole table)."""
    with zf.open(part) as fh:
        head = b""
        while True:
            chunk = fh.read(_READ)
            head += chunk
            found = _SHEET_DATA.search(head)
            if found is not None:
                break
            if not chunk or len(head) > 64 * _READ:
                raise NotWindowed("no sheetData")
        if found.group(2):   # <sheetData/>: no rows
            return
        prefix = found.group(1)
        rest = head[found.end():]
        head = _DIMENSION.sub(b"", head[:found.end()], count=1)   # calamine sizes the range from the cells
        tail = b"</" + prefix + b"sheetData></" + prefix + b"worksheet>"
        close = b"</" + prefix + b"sheetData>"

        window: list[bytes] = []
        renumbering = strings.renumbering() if strings is not None else None
        for element in _row_elements(fh, close, rest):
            window.append(element if renumbering is None else renumbering.row(element, window))
            if len(window) == rows:
                yield _window(head, window, tail, renumbering)
                renumbering = strings.renumbering() if strings is not None else None
        if window:
            yield _window(head, window, tail, renumbering)


def _window(head: bytes, rows: list[bytes], tail: bytes,
            renumbering: _Renumbering | None) -> tuple[bytes, bytes | None]:
    """One window's worksheet and strings, its rows let go (a window read holds one copy)."""
    xml = b"".join([head, *rows, tail])
    rows.clear()
    return xml, renumbering.table() if renumbering is not None else None


def windows(path: str | os.PathLike[str], name: str, part: str,
            rows: int | None = None) -> Iterator[tuple[int, list[list[Any]]]]:
    """(the Excel row number of its first row, its rows) for each window of sheet ``name``
    (zip part ``part``), the rows as calamine's ``to_python`` gives them but each from column
    A (the empty cells before the window's first used column given as ``""``)."""
    with tempfile.TemporaryDirectory(prefix="complaint-desk-window-") as scratch:
        base = Path(scratch) / "base.xlsx"
        here = Path(scratch) / "window.xlsx"
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if len({n.lower() for n in names}) != len(names):
                raise NotWindowed("two parts of one name")   # which one calamine reads is its own affair
            sst = next((n for n in names if n.lower() == _SST and n != part), None)
            strings = None
            if sst is not None:
                with zf.open(sst) as src:
                    strings = _Strings(src, sst, Path(scratch) / "strings.xml")
            # every part but the sheet and its strings, once: each window is a copy of it with
            # its rows and strings added
            with zipfile.ZipFile(base, "w", zipfile.ZIP_STORED) as out:   # on disk: no time spent packing
                for info in zf.infolist():
                    if info.filename not in (part, sst):
                        with zf.open(info) as src, out.open(info.filename, "w") as dst:
                            shutil.copyfileobj(src, dst, _READ)
            for xml, table in _windows_xml(zf, part, rows or WINDOW_ROWS, strings):
                shutil.copyfile(base, here)
                with zipfile.ZipFile(here, "a", zipfile.ZIP_STORED) as out:
                    if strings is not None and table is not None:
                        out.writestr(strings.part, table)
                    elif strings is not None:   # the whole table, as the workbook has it
                        with open(strings.path, "rb") as src, out.open(strings.part, "w") as dst:
                            shutil.copyfileobj(src, dst, _READ)
                    out.writestr(part, xml)
                del xml, table
                sheet = CalamineWorkbook.from_path(str(here)).get_sheet_by_name(name)
                start = sheet.start
                grid = sheet.to_python()
                del sheet
                if not grid or start is None:
                    continue
                pad = [""] * start[1]
                yield start[0] + 1, [pad + row for row in grid] if pad else grid
                del grid   # before the next window is read: one window's rows at a time
