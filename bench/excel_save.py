"""A workbook laid out as Excel saves it: every row and cell names its place, every text is a
shared string (``xl/sharedStrings.xml``, in the order Excel meets them: sheet by sheet, row by
row). What this program writes instead is unnumbered cells with inline strings.

A manager's save of the merged workbook goes through Excel (or WPS), so reading it back
(merged/readback.py) meets this layout, not ours. The bench's manager save and the read-back
tests use it to measure and check that path at sizes no real Excel here could save (no Excel
on Linux, and LibreOffice needs minutes and gigabytes for 300,000 rows).

Run ``python -m bench.excel_save IN.xlsx OUT.xlsx``.
"""

from __future__ import annotations

import html
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

_ROW = re.compile(rb"<row\b([^>]*?)(/>|>(.*?)</row>)", re.S)
_CELL = re.compile(rb"<c\b([^>]*?)(?:/>|>(.*?)</c>)", re.S)
_R = re.compile(rb'\sr="([A-Z]+)(\d+)"')
_ROW_R = re.compile(rb'\sr="(\d+)"')
_T_ATTR = re.compile(rb'\st="([^"]*)"')
_TEXT = re.compile(rb"<t\b[^>]*?(?:/>|>(.*?)</t>)", re.S)
_V = re.compile(rb"<v>(.*?)</v>", re.S)
_SI = re.compile(rb"<si\b[^>]*?(?:/>|>(.*?)</si>)", re.S)
_SST = "xl/sharedStrings.xml"
_SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def _letters(col: int) -> bytes:
    out = b""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        out = bytes([65 + rem]) + out
    return out


def _column(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n - 1


class _Strings:
    """The shared strings table being built: the package's own first, then each new text."""

    def __init__(self, items: list[bytes]) -> None:
        self.items = items                      # each <si>'s inner XML, as written
        self.index: dict[bytes, int] = {}
        for i, item in enumerate(items):
            self.index.setdefault(item, i)

    def add(self, item: bytes) -> int:
        if item not in self.index:
            self.index[item] = len(self.items)
            self.items.append(item)
        return self.index[item]

    def xml(self) -> Iterator[bytes]:
        yield (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">'
               % (len(self.items), len(self.items)))
        for item in self.items:
            yield b"<si>" + item + b"</si>"
        yield b"</sst>"


def _cell(attrs: bytes, body: bytes | None, ref: bytes, strings: _Strings) -> bytes:
    attrs = _R.sub(b"", attrs)
    kind = _T_ATTR.search(attrs)
    if kind is not None and kind.group(1) == b"inlineStr" and body is not None:
        # <is>…</is> → a shared string item with the same content (<t> or rich runs)
        inner = body.strip()
        inner = inner[4:-5] if inner.startswith(b"<is>") and inner.endswith(b"</is>") else inner
        index = strings.add(inner)
        attrs = _T_ATTR.sub(b' t="s"', attrs)
        return b'<c r="%s"%s><v>%d</v></c>' % (ref, attrs, index)
    if body is None:
        return b'<c r="%s"%s/>' % (ref, attrs)
    return b'<c r="%s"%s>%s</c>' % (ref, attrs, body)


def _sheet(xml: bytes, strings: _Strings) -> bytes:
    """The sheet's XML with numbered rows and cells and shared strings."""
    start, end = xml.find(b"<sheetData"), xml.find(b"</sheetData>")
    if start < 0 or end < 0:
        return xml
    open_end = xml.find(b">", start) + 1
    out = [xml[:open_end]]
    last = 0
    for row in _ROW.finditer(xml, open_end, end):
        found = _ROW_R.search(row.group(1))
        n = int(found.group(1)) if found else last + 1
        last = n
        row_attrs = _ROW_R.sub(b"", row.group(1))
        if row.group(3) is None:
            out.append(b'<row r="%d"%s/>' % (n, row_attrs))
            continue
        cells = []
        col = 0
        for cm in _CELL.finditer(row.group(3)):
            placed = _R.search(cm.group(1))
            if placed is not None:
                col = _column(placed.group(1))
            # Excel leaves out a cell with neither value nor format
            if cm.group(2) or re.search(rb'\ss="', cm.group(1)):
                cells.append(_cell(cm.group(1), cm.group(2), _letters(col) + b"%d" % n, strings))
            col += 1
        out.append(b'<row r="%d"%s>%s</row>' % (n, row_attrs, b"".join(cells)))
    out.append(xml[end:])
    return b"".join(out)


def excel_save(src: str | Path, dst: str | Path) -> Path:
    """Write ``dst``: ``src`` as Excel lays a saved workbook out (numbered cells, shared strings)."""
    dst = Path(dst)
    with zipfile.ZipFile(src) as zin:
        names = zin.namelist()
        items = [m.group(1) or b"" for m in _SI.finditer(zin.read(_SST))] if _SST in names else []
        strings = _Strings(items)
        sheets = {n: _sheet(zin.read(n), strings) for n in names if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)}
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
            for name in names:
                if name in sheets:
                    zout.writestr(name, sheets[name])
                elif name == _SST:
                    continue
                elif name == "[Content_Types].xml" and _SST not in names:
                    types = zin.read(name).replace(
                        b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="%s"/></Types>'
                        % _SST_TYPE.encode())
                    zout.writestr(name, types)
                elif name == "xl/_rels/workbook.xml.rels" and _SST not in names:
                    rels = zin.read(name).replace(
                        b"</Relationships>",
                        b'<Relationship Id="rIdSst" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                        b'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
                    zout.writestr(name, rels)
                else:
                    zout.writestr(zin.getinfo(name), zin.read(name))
            with zout.open(_SST, "w", force_zip64=True) as fh:
                for part in strings.xml():
                    fh.write(part)
    return dst


def texts(path: str | Path) -> list[str]:
    """The shared strings of ``path`` as text (for tests)."""
    with zipfile.ZipFile(path) as zf:
        return [html.unescape(b"".join(t or b"" for t in _TEXT.findall(m.group(1) or b"")).decode())
                for m in _SI.finditer(zf.read(_SST))]


if __name__ == "__main__":
    excel_save(sys.argv[1], sys.argv[2])
