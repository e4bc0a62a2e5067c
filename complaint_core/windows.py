"""A big sheet of an xlsx read by python-calamine a window of rows at a time (issue 17).

calamine builds a sheet's whole range before the first row can be taken: 64 MiB for a shop
with 30,000 complaints in one workbook, beside the 50 MiB of rows made from it. A reading
child's memory then grew with the size of the shop's file. Here the sheet's XML is cut, at
its row elements, into windows of ``WINDOW_ROWS`` rows; each window goes into a copy of the
package beside its other parts (shared strings, styles, the workbook's date system) and
calamine reads that copy: every cell reads exactly as calamine reads it in the whole file.

A sheet this module cannot cut safely (a row without its number, no sheetData) raises
``NotWindowed``: its reader reads it whole, as before.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook

from .bounds import sheet_parts

__all__ = ["BIG_SHEET", "WINDOW_ROWS", "NotWindowed", "big_sheets", "windows"]

# bytes of a sheet's XML from which it is read in windows: about 9,000 complaints of the
# template (the bench's 30,000 take 34 MB); below, the whole sheet costs less than the windows'
# copies of the shared strings
BIG_SHEET = 6 << 20
WINDOW_ROWS = 2_000
_READ = 1 << 20

_SHEET_DATA = re.compile(rb"<((?:\w+:)?)sheetData\b[^>]*?(/?)>")
_ROW = re.compile(rb"<(?:\w+:)?row\b([^>]*)>")
_ROW_NUMBER = re.compile(rb'\sr="[0-9]+"')
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\b[^>]*?/>")


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


def _windows_xml(zf: zipfile.ZipFile, part: str, rows: int) -> Iterator[bytes]:
    """The sheet's XML as windows of ``rows`` rows, each a whole worksheet."""
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
        for element in _row_elements(fh, close, rest):
            window.append(element)
            if len(window) == rows:
                yield b"".join([head, *window, tail])
                window = []
        if window:
            yield b"".join([head, *window, tail])


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
            # every part but the sheet, once: each window is a copy of it with its rows added
            with zipfile.ZipFile(base, "w", zipfile.ZIP_STORED) as out:   # on disk: no time spent packing
                for info in zf.infolist():
                    if info.filename != part:
                        with zf.open(info) as src, out.open(info.filename, "w") as dst:
                            shutil.copyfileobj(src, dst, _READ)
            for xml in _windows_xml(zf, part, rows or WINDOW_ROWS):
                shutil.copyfile(base, here)
                with zipfile.ZipFile(here, "a", zipfile.ZIP_STORED) as out:
                    out.writestr(part, xml)
                del xml
                sheet = CalamineWorkbook.from_path(str(here)).get_sheet_by_name(name)
                start = sheet.start
                grid = sheet.to_python()
                del sheet
                if not grid or start is None:
                    continue
                pad = [""] * start[1]
                yield start[0] + 1, [pad + row for row in grid] if pad else grid
