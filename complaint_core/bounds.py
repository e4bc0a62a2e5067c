"""Bound the used range of each sheet before python-calamine allocates it.

calamine makes one 32-byte slot for every cell of a sheet's used range, empty or not: one
stray value at XFD1048576 asks for 512 GiB and aborts the process, one at AJ1048576 costs
1.6 GB and seconds. So the cells of each sheet are located here first, by reading the file's
own structure (xlsx: the <dimension> the saving program wrote, else the sheet's cells; xlsb: the
dimension record, else the cell records; ods: content.xml's rows and cells with their repeat
counts; xls: the DIMENSIONS record, else the cell records of the Workbook stream), and cells far
away from everything else are cut out of what calamine sees, each one named to the shop. The
shop's file is never touched: calamine reads a trimmed copy in memory.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UnreadableWorkbook
from .safety import HEAD, WorkbookFacts

CELL_BUDGET = 4_000_000     # ~100,000 rows x 40 columns: far beyond a shop's complaint table
ROW_GAP = 1_000             # empty rows between the table and a cell that make it a stray
COL_GAP = 50                # empty columns likewise
MAX_STRAYS = 1_000
_DIM_RE = re.compile(rb'<(?:\w+:)?dimension\b[^>]*?\sref="([A-Z]{1,3})([0-9]{1,7})(?::([A-Z]{1,3})([0-9]{1,7}))?"')
_DIM_REF_RE = re.compile(rb'(<(?:\w+:)?dimension\b[^>]*?\sref=")[^"]*(")')
_CELL_RE = re.compile(rb'<(?:\w+:)?c\b[^>]*?\sr="([A-Z]{1,3})([0-9]{1,7})"[^>]*?(/?)>')
_SHEET_RE = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?\sname="([^"]*)"[^>]*?\s(?:\w+:)?id="([^"]*)"')
REL_RE = re.compile(rb'<(?:\w+:)?Relationship\b[^>]*?(?:\sId="([^"]*)"[^>]*?\sTarget="([^"]*)"'
                     rb'|\sTarget="([^"]*)"[^>]*?\sId="([^"]*)")')


def col_index(letters: bytes | str) -> int:
    """0-based column of Excel letters (A -> 0, XFD -> 16383)."""
    n = 0
    for ch in letters if isinstance(letters, str) else letters.decode():
        n = n * 26 + ord(ch) - 64
    return n - 1


def letters(index: int) -> str:
    from .model import column_letter

    return column_letter(index)


@dataclass(slots=True)
class SheetBound:
    """One sheet whose used range was too big: where its real block ends and what lies beyond."""

    name: str
    part: str
    last_row: int                       # 1-based, inclusive
    last_col: int                       # 0-based, inclusive
    strays: list[str] = field(default_factory=list)   # A1 references of the cells cut out
    values: dict[str, str] = field(default_factory=dict)   # A1 -> what the cell held (filled when cut)
    spans: list[tuple[int, int, int]] = field(default_factory=list)   # ods: (start, end, columns) in content.xml
    patches: list[tuple[int, bytes]] = field(default_factory=list)   # xls: (offset in the stream, new bytes)


def refuse_too_many(path: object, bound: SheetBound) -> None:
    """Past MAX_STRAYS far cells the sheet is not a table with a few typos beside it: refused,
    naming the first cell (the same answer for every format)."""
    if len(bound.strays) > MAX_STRAYS:
        raise UnreadableWorkbook(path, f"工作表“{bound.name}”在表格之外有 {len(bound.strays)} 个零散单元格"
                                       f"（如 {bound.strays[0]}），无法安全读取 (too many far cells)")


def sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Zip part name -> sheet name, from the workbook and its relationships."""
    import html

    try:
        book = zf.read("xl/workbook.xml")
        rels = zf.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return {}
    targets: dict[str, str] = {}
    for m in REL_RE.finditer(rels):
        rid, target = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(4), m.group(3))
        t = target.decode("utf-8", "replace").lstrip("/")
        targets[rid.decode()] = t if t.startswith("xl/") else f"xl/{t}"
    return {targets[rid.decode()]: html.unescape(name.decode("utf-8", "replace"))
            for name, rid in _SHEET_RE.findall(book) if rid.decode() in targets}


def _scan_cells(zf: zipfile.ZipFile, part: str, visit: object) -> None:
    """Call ``visit(col, row)`` for each cell of ``part`` that holds something, streaming."""
    tail = b""
    with zf.open(part) as fh:
        while True:
            chunk = fh.read(1 << 20)
            buf = tail + chunk
            cut = buf.rfind(b"<") if chunk else len(buf)
            for m in _CELL_RE.finditer(buf, 0, cut):
                if not m.group(3):   # <c r="B2" s="1"/> is only formatting: calamine makes no cell
                    visit(m.group(1), int(m.group(2)))   # type: ignore[operator]
            if not chunk:
                return
            tail = buf[cut:]


def interval_end(spans: list[tuple[int, int]], gap: int) -> int:
    """Where the first block of (start, end) spans ends: the first gap wider than ``gap`` stops it."""
    spans.sort()
    end = spans[0][1]
    for a, b in spans[1:]:
        if a - end > gap:
            break
        end = max(end, b)
    return end


def block_end(values: list[int], gap: int) -> int:
    values.sort()
    end = values[0]
    for v in values[1:]:
        if v - end > gap:
            break
        end = v
    return end


def bound_sheets(path: str | os.PathLike[str], facts: WorkbookFacts, *, only: set[str] | None = None,
                 any_block: bool = False) -> list[SheetBound]:
    """The sheets of an xlsx or ods whose used range is too big to hand to calamine as it is
    (``only``: of those sheets; xlsx).

    Raises UnreadableWorkbook when even the block without the far cells is too big, unless
    ``any_block`` (the merged workbook: its table is as big as the chain, only far cells are cut).
    """
    if facts.kind == "ods":
        from .bounds_ods import bound_ods

        return bound_ods(Path(path))
    if facts.kind == "xlsb":
        from .bounds_xlsb import bound_xlsb

        return bound_xlsb(Path(path))
    if facts.kind == "xls":
        from .bounds_xls import bound_xls

        return bound_xls(Path(path))
    if facts.kind != "xlsx":
        return []
    p = Path(path)
    out: list[SheetBound] = []
    with zipfile.ZipFile(p) as zf:
        parts = sheet_parts(zf)
        for part, name in parts.items():
            if only is not None and name not in only:
                continue
            try:
                info = zf.getinfo(part)
            except KeyError:
                continue
            # the merged workbook's tables are as big as the chain: a range costing calamine up to
            # four times the sheet's XML (32 bytes a cell) is its table; a far cell makes it far bigger
            budget = max(CELL_BUDGET, info.file_size // 8) if any_block else CELL_BUDGET
            with zf.open(info) as fh:
                head = fh.read(HEAD)
            dim = _DIM_RE.search(head)
            if dim is not None:
                c1, r1, c2, r2 = dim.groups()
                if c2 is None:
                    c2, r2 = c1, r1
                box = (abs(int(r2) - int(r1)) + 1) * (abs(col_index(c2) - col_index(c1)) + 1)
                if box <= budget:
                    continue   # what the saving program says: the common case costs 4 KiB
            rows: set[int] = set()
            cols: set[bytes] = set()

            def seen(col: bytes, row: int, rows: set[int] = rows, cols: set[bytes] = cols) -> None:
                rows.add(row)
                cols.add(col)

            _scan_cells(zf, part, seen)
            if not rows:
                continue
            col_nums = [col_index(c) for c in cols]
            lo_r, lo_c = min(rows), min(col_nums)
            if (max(rows) - lo_r + 1) * (max(col_nums) - lo_c + 1) <= budget:
                continue
            last_row = block_end(list(rows), ROW_GAP)
            last_col = block_end(col_nums, COL_GAP)
            if not any_block and (last_row - lo_r + 1) * (last_col - lo_c + 1) > CELL_BUDGET:
                raise UnreadableWorkbook(p, f"工作表“{name}”的已用区域过大（约 {last_row - lo_r + 1} 行 × "
                                            f"{last_col - lo_c + 1} 列），无法安全读取 (used range too large)")
            bound = SheetBound(name, part, last_row, last_col)

            def stray(col: bytes, row: int, bound: SheetBound = bound) -> None:
                if row > bound.last_row or col_index(col) > bound.last_col:
                    bound.strays.append(f"{col.decode()}{row}")

            _scan_cells(zf, part, stray)
            refuse_too_many(p, bound)
            if bound.strays:
                out.append(bound)
    return out


def trimmed_copy(path: str | os.PathLike[str], bounds: list[SheetBound]) -> bytes:
    """The workbook as bytes with the stray cells of ``bounds`` cut out (the file is not touched)."""
    import io

    if bounds and bounds[0].part == "content.xml":
        from .bounds_ods import trimmed_ods

        return trimmed_ods(path, bounds)
    if bounds and bounds[0].part == "Workbook":   # an xls's stream
        from .bounds_xls import trimmed_xls

        return trimmed_xls(path, bounds)
    by_part = {b.part: b for b in bounds}
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        shared: list[str] | None = None
        for info in src.infolist():
            data = src.read(info)
            bound = by_part.get(info.filename)
            if bound is not None and info.filename.endswith(".bin"):
                from .bounds_xlsb import trimmed_xlsb_part

                data = trimmed_xlsb_part(data, bound)
            elif bound is not None:
                refs = b"|".join(re.escape(r.encode()) for r in bound.strays)
                cut: list[tuple[str, bytes, bytes]] = []

                def keep(m: re.Match[bytes], cut: list[tuple[str, bytes, bytes]] = cut) -> bytes:
                    cut.append((m.group(1).decode(), m.group(0), m.group(2) or b""))
                    return b""

                data = re.sub(rb'<(?:\w+:)?c\b[^>]*?\sr="(' + refs + rb')"[^>]*?(?:/>|>(.*?)</(?:\w+:)?c>)',
                              keep, data, flags=re.S)
                for ref, elem, inner in cut:
                    text = " ".join(t.decode("utf-8", "replace") for t in re.findall(rb">([^<]*)<", inner) if t)
                    if re.search(rb'\st="s"', elem.split(b">", 1)[0]) and text.strip().isdigit():
                        if shared is None:
                            shared = _shared_strings(src)
                        at = int(text.strip())
                        text = shared[at] if at < len(shared) else text
                    bound.values[ref] = text[:60]
                last = f"{letters(bound.last_col)}{bound.last_row}".encode()
                data = _DIM_REF_RE.sub(rb"\g<1>A1:" + last + rb"\g<2>", data, count=1)
            dst.writestr(info, data)
    return buf.getvalue()


def _shared_strings(zf: zipfile.ZipFile) -> list[str]:
    import html

    try:
        data = zf.read("xl/sharedStrings.xml")
    except KeyError:
        return []
    return [html.unescape("".join(t.decode("utf-8", "replace") for t in re.findall(rb"<(?:\w+:)?t\b[^>]*>([^<]*)<", si)))
            for si in re.findall(rb"<(?:\w+:)?si\b[^>]*>(.*?)</(?:\w+:)?si>", data, flags=re.S)]
