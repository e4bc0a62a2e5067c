"""Far cells of an ods: found in content.xml by counting rows and cells with their repeats."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

from .bounds import (
    CELL_BUDGET,
    COL_GAP,
    ROW_GAP,
    SheetBound,
    interval_end,
    letters,
    refuse_too_many,
)
from .errors import UnreadableWorkbook

# An ods keeps every sheet in content.xml; rows and cells carry repeat counts instead of
# references, so a far cell is found by counting, and cut out by making it an empty cell that
# spans as many columns (the cells after it keep their places).
_ODS_TOKEN_RE = re.compile(rb"<table:table((?:\s[^>]*)?)>|</table:table>|<table:table-row((?:\s[^>]*?)?)(/?)>|"
                           rb"<table:(?:covered-)?table-cell((?:\s[^>]*?)?)(/?)>")
_ODS_NAME_RE = re.compile(rb'table:name="([^"]*)"')
_ODS_ROWS_RE = re.compile(rb'table:number-rows-repeated="(\d+)"')
_ODS_COLS_RE = re.compile(rb'table:number-columns-repeated="(\d+)"')
_ODS_VALUE_RE = re.compile(rb"office:value-type=|table:formula=")
_ODS_CELL_END = b"</table:table-cell>"


def _ods_scan(data: bytes) -> dict[str, list[tuple[int, int, int, int, int, int]]]:
    """Sheet -> its cells that hold something: (row1, row2, col1, col2, start, end)."""
    out: dict[str, list[tuple[int, int, int, int, int, int]]] = {}
    row = 0          # first row of the current row element
    rep = 0          # how many rows the current row element stands for
    current = ""
    for m in _ODS_TOKEN_RE.finditer(data):
        if m.group(1) is not None:
            import html

            found = _ODS_NAME_RE.search(m.group(1))
            current = html.unescape(found.group(1).decode("utf-8", "replace")) if found else ""
            out.setdefault(current, [])
            row, rep = 0, 0
            col = 0
        elif m.group(0) == b"</table:table>":
            continue
        elif m.group(2) is not None:
            row += rep
            found = _ODS_ROWS_RE.search(m.group(2))
            rep = int(found.group(1)) if found else 1
            col = 0
        else:
            attrs = m.group(4)
            found = _ODS_COLS_RE.search(attrs)
            width = int(found.group(1)) if found else 1
            if _ODS_VALUE_RE.search(attrs):
                end = m.end() if m.group(5) else data.find(_ODS_CELL_END, m.end()) + len(_ODS_CELL_END)
                out[current].append((row, row + max(rep, 1) - 1, col, col + width - 1, m.start(), end))
            col += width
    return out



def bound_ods(p: Path) -> list[SheetBound]:
    with zipfile.ZipFile(p) as zf:
        data = zf.read("content.xml")
    out: list[SheetBound] = []
    for name, cells in _ods_scan(data).items():
        if not cells:
            continue
        top = max(c[1] for c in cells) + 1
        right = max(c[3] for c in cells) + 1
        if top * right <= CELL_BUDGET:
            continue
        last_row = interval_end([(c[0], c[1]) for c in cells], ROW_GAP)
        last_col = interval_end([(c[2], c[3]) for c in cells], COL_GAP)
        if (last_row + 1) * (last_col + 1) > CELL_BUDGET:
            raise UnreadableWorkbook(p, f"工作表“{name}”的已用区域过大（约 {last_row + 1} 行 × {last_col + 1} 列），"
                                        "无法安全读取 (used range too large)")
        bound = SheetBound(name, "content.xml", last_row + 1, last_col)
        for r1, _r2, c1, c2, start, end in cells:
            if r1 > last_row or c1 > last_col:
                import html

                ref = f"{letters(c1)}{r1 + 1}"
                bound.strays.append(ref)
                text = b" ".join(re.findall(rb">([^<]+)<", data[start:end]))
                bound.values[ref] = html.unescape(text.decode("utf-8", "replace"))[:60]
                bound.spans.append((start, end, c2 - c1 + 1))
        refuse_too_many(p, bound)
        out.append(bound)
    return out


def trimmed_ods(path: str | os.PathLike[str], bounds: list[SheetBound]) -> bytes:
    import io

    with zipfile.ZipFile(path) as src:
        data = src.read("content.xml")
        spans = sorted(s for b in bounds for s in b.spans)
        parts, at = [], 0
        for start, end, width in spans:
            parts += [data[at:start], b'<table:table-cell table:number-columns-repeated="%d"/>' % width]
            at = end
        parts.append(data[at:])
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as dst:
            for info in src.infolist():   # mimetype first and stored, as the format wants
                dst.writestr(info, b"".join(parts) if info.filename == "content.xml" else src.read(info))
    return buf.getvalue()
