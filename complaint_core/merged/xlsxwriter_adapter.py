"""Everything the merged workbook assumes about XlsxWriter beyond its documented API.

XlsxWriter writes every sheet's frame through its public API (header, column formats, Excel
Table, dropdowns, charts); the data rows of the big sheets are then streamed into its output
(``rowxml.py``), because a cell call per complaint would keep the manager waiting. Streaming
needs a few facts about XlsxWriter's output that its documentation does not promise. They are
all here, each is checked on every write, and a check that fails raises ``WriterShapeChanged``
(one line: which fact, which part) instead of writing a workbook Excel would have to repair:

1. ``Format._get_xf_index()`` gives a format its cell-style number now, and ``Format.xf_index``
   is the ``s="N"`` a cell wears. Checked after the write: entry N of ``cellXfs`` in
   ``xl/styles.xml`` carries the format's number format.
2. A Table declared over its header and one data row is written as exactly two
   ``ref="A2:K3"`` (the ``<table>`` and its ``<autoFilter>``); both are stretched to the real
   last row, and any other count stops the write.
3. A sheet part has exactly one ``<dimension ref="…"/>``; it is rewritten to the streamed range.
4. A sheet part has exactly one ``<sheetData>`` (or ``<sheetData/>``), and the rows XlsxWriter
   wrote into it end before the first streamed row.

Which part holds which sheet, and which Table belongs to which sheet, is read from the
package's relationships as the OOXML standard defines them (ECMA-376 Part 2), not guessed
from XlsxWriter's file names. ``tests/test_xlsxwriter_adapter.py`` feeds these functions
altered XML to prove each check fires.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from complaint_core.errors import ComplaintDeskError

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_WORKSHEET = f"{_DOC_REL}/worksheet"
_TABLE = f"{_DOC_REL}/table"
_DIMENSION = re.compile(rb'<dimension ref="[^"]*"/>')
_ROW_NUMBER = re.compile(rb'<row r="([0-9]+)"')
# Number formats Excel knows by id without a <numFmt> element (ECMA-376 Part 1, 18.8.30).
_BUILTIN_FORMATS = {0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00", 9: "0%", 10: "0.00%",
                    11: "0.00E+00", 12: "# ?/?", 13: "# ??/??", 14: "mm-dd-yy", 15: "d-mmm-yy",
                    16: "d-mmm", 17: "mmm-yy", 18: "h:mm AM/PM", 19: "h:mm:ss AM/PM", 20: "h:mm",
                    21: "h:mm:ss", 22: "m/d/yy h:mm", 49: "@"}


class WriterShapeChanged(ComplaintDeskError):
    """XlsxWriter's output no longer has the shape the merged workbook streams rows into."""

    def __init__(self, what: str, part: str = "") -> None:
        where = f"{part}: " if part else ""
        super().__init__(f"XlsxWriter 输出格式已变，汇总表未写出 (XlsxWriter's output changed shape; "
                         f"the merged workbook was not written): {where}{what}")


def fix_style_indexes(formats: Iterable[Any]) -> None:
    """Give every format its cell-style number now: streamed cells refer to them by number,
    and XlsxWriter numbers (and writes) a format only when a cell of its own uses it."""
    for fmt in formats:
        fix = getattr(fmt, "_get_xf_index", None)
        if fix is None:
            raise WriterShapeChanged("Format._get_xf_index() is gone")
        fix()


def style_index(fmt: Any) -> int:
    """The ``s="N"`` of a cell in ``fmt``, fixed earlier by ``fix_style_indexes``."""
    index = getattr(fmt, "xf_index", None)
    if not isinstance(index, int):
        raise WriterShapeChanged(f"Format.xf_index is {index!r}, not a number")
    return index


def check_styles(styles_xml: bytes, expected: Mapping[int, str]) -> None:
    """Entry N of ``cellXfs`` carries number format ``expected[N]``, for every N given."""
    root = ElementTree.fromstring(styles_xml)
    codes = dict(_BUILTIN_FORMATS)
    for num in root.iter(f"{_MAIN}numFmt"):
        codes[int(num.get("numFmtId", "-1"))] = num.get("formatCode", "")
    cell_xfs = root.find(f"{_MAIN}cellXfs")
    xfs = [] if cell_xfs is None else cell_xfs.findall(f"{_MAIN}xf")
    for index, code in expected.items():
        if index >= len(xfs):
            raise WriterShapeChanged(f"cell style {index} is not in cellXfs ({len(xfs)} styles)",
                                     "xl/styles.xml")
        got = codes.get(int(xfs[index].get("numFmtId", "0")))
        if got != code:
            raise WriterShapeChanged(f"cell style {index} has number format {got!r}, not {code!r}",
                                     "xl/styles.xml")


@dataclass(slots=True)
class SheetParts:
    """Where one sheet lives in the package: its part and its Tables' parts."""

    part: str
    tables: list[str] = field(default_factory=list)


def _rels_name(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{name}.rels")


def _targets(zf: zipfile.ZipFile, part: str, rel_type: str) -> dict[str, str]:
    """Relationship id -> target part name, for ``part``'s relationships of ``rel_type``."""
    try:
        root = ElementTree.fromstring(zf.read(_rels_name(part)))
    except KeyError:
        return {}
    folder = posixpath.dirname(part)
    # a target is relative to the part's folder, or absolute from the package root
    return {rel.get("Id", ""): posixpath.normpath(posixpath.join(folder, rel.get("Target", ""))).lstrip("/")
            for rel in root.iter(f"{_PKG_REL}Relationship") if rel.get("Type") == rel_type}


def sheet_parts(zf: zipfile.ZipFile, workbook: str = "xl/workbook.xml") -> dict[str, SheetParts]:
    """Sheet name -> its parts, read from the workbook's relationships (ECMA-376 Part 2)."""
    sheets = _targets(zf, workbook, _WORKSHEET)
    out: dict[str, SheetParts] = {}
    for sheet in ElementTree.fromstring(zf.read(workbook)).iter(f"{_MAIN}sheet"):
        part = sheets.get(sheet.get(f"{{{_DOC_REL}}}id", ""))
        if part is None:
            raise WriterShapeChanged(f"sheet {sheet.get('name')!r} has no worksheet relationship", workbook)
        out[sheet.get("name", "")] = SheetParts(part, sorted(_targets(zf, part, _TABLE).values()))
    return out


def stretch_table(xml: bytes, declared: str, actual: str, part: str = "") -> bytes:
    """The Table's ``ref`` and its filter's ``ref`` go from ``declared`` to ``actual``."""
    old, new = f'ref="{declared}"'.encode(), f'ref="{actual}"'.encode()
    found = xml.count(old)
    if found != 2:
        raise WriterShapeChanged(f'expected {old.decode()} twice (table and autoFilter), found {found}x', part)
    return xml.replace(old, new)


def split_sheet(xml: bytes, dimension: str, first_row: int, part: str = "") -> tuple[bytes, bytes]:
    """The sheet XML before and after where the streamed rows go; ``first_row`` is the 1-based
    row number of the first streamed row, ``dimension`` the sheet's new used range."""
    xml, found = _DIMENSION.subn(f'<dimension ref="{dimension}"/>'.encode(), xml)
    if found != 1:
        raise WriterShapeChanged(f"expected one <dimension ref=…/>, found {found}", part)
    empty, close = xml.count(b"<sheetData/>"), xml.count(b"</sheetData>")
    if (empty, close) == (1, 0):
        head, tail = xml.split(b"<sheetData/>")
        return head + b"<sheetData>", b"</sheetData>" + tail
    if (empty, close) != (0, 1) or xml.count(b"<sheetData>") != 1:
        raise WriterShapeChanged(f"expected one <sheetData>, found {empty} empty and {close} closed", part)
    head, tail = xml.split(b"</sheetData>")
    rows = _ROW_NUMBER.findall(head[head.index(b"<sheetData>"):])
    if rows and int(rows[-1]) >= first_row:
        raise WriterShapeChanged(f"XlsxWriter wrote row {int(rows[-1])}, where streamed rows start "
                                 f"at {first_row}", part)
    return head, b"</sheetData>" + tail
