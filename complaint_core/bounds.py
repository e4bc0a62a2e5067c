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
from collections.abc import Iterator
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
_REL_RE = re.compile(rb'<(?:\w+:)?Relationship\b[^>]*?(?:\sId="([^"]*)"[^>]*?\sTarget="([^"]*)"'
                     rb'|\sTarget="([^"]*)"[^>]*?\sId="([^"]*)")')


def col_index(letters: bytes | str) -> int:
    """0-based column of Excel letters (A -> 0, XFD -> 16383)."""
    n = 0
    for ch in letters if isinstance(letters, str) else letters.decode():
        n = n * 26 + ord(ch) - 64
    return n - 1


def _letters(index: int) -> str:
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


def _sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Zip part name -> sheet name, from the workbook and its relationships."""
    import html

    try:
        book = zf.read("xl/workbook.xml")
        rels = zf.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return {}
    targets: dict[str, str] = {}
    for m in _REL_RE.finditer(rels):
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


def block_end(values: list[int], gap: int) -> int:
    values.sort()
    end = values[0]
    for v in values[1:]:
        if v - end > gap:
            break
        end = v
    return end


def bound_sheets(path: str | os.PathLike[str], facts: WorkbookFacts) -> list[SheetBound]:
    """The sheets of an xlsx or ods whose used range is too big to hand to calamine as it is.

    Raises UnreadableWorkbook when even the block without the far cells is too big.
    """
    if facts.kind == "ods":
        return _bound_ods(Path(path))
    if facts.kind == "xlsb":
        return _bound_xlsb(Path(path))
    if facts.kind == "xls":
        return _bound_xls(Path(path))
    if facts.kind != "xlsx":
        return []
    p = Path(path)
    out: list[SheetBound] = []
    with zipfile.ZipFile(p) as zf:
        parts = _sheet_parts(zf)
        for part, name in parts.items():
            try:
                info = zf.getinfo(part)
            except KeyError:
                continue
            with zf.open(info) as fh:
                head = fh.read(HEAD)
            dim = _DIM_RE.search(head)
            if dim is not None:
                c1, r1, c2, r2 = dim.groups()
                if c2 is None:
                    c2, r2 = c1, r1
                box = (abs(int(r2) - int(r1)) + 1) * (abs(col_index(c2) - col_index(c1)) + 1)
                if box <= CELL_BUDGET:
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
            if (max(rows) - lo_r + 1) * (max(col_nums) - lo_c + 1) <= CELL_BUDGET:
                continue
            last_row = block_end(list(rows), ROW_GAP)
            last_col = block_end(col_nums, COL_GAP)
            if (last_row - lo_r + 1) * (last_col - lo_c + 1) > CELL_BUDGET:
                raise UnreadableWorkbook(p, f"工作表“{name}”的已用区域过大（约 {last_row - lo_r + 1} 行 × "
                                            f"{last_col - lo_c + 1} 列），无法安全读取 (used range too large)")
            bound = SheetBound(name, part, last_row, last_col)

            def stray(col: bytes, row: int, bound: SheetBound = bound) -> None:
                if row > bound.last_row or col_index(col) > bound.last_col:
                    bound.strays.append(f"{col.decode()}{row}")

            _scan_cells(zf, part, stray)
            if len(bound.strays) > MAX_STRAYS:
                raise UnreadableWorkbook(p, f"工作表“{name}”在表格之外有 {len(bound.strays)} 个零散单元格"
                                            f"（如 {bound.strays[0]}），无法安全读取 (too many far cells)")
            out.append(bound)
    return out


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


def _interval_end(spans: list[tuple[int, int]], gap: int) -> int:
    spans.sort()
    end = spans[0][1]
    for a, b in spans[1:]:
        if a - end > gap:
            break
        end = max(end, b)
    return end


def _bound_ods(p: Path) -> list[SheetBound]:
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
        last_row = _interval_end([(c[0], c[1]) for c in cells], ROW_GAP)
        last_col = _interval_end([(c[2], c[3]) for c in cells], COL_GAP)
        if (last_row + 1) * (last_col + 1) > CELL_BUDGET:
            raise UnreadableWorkbook(p, f"工作表“{name}”的已用区域过大（约 {last_row + 1} 行 × {last_col + 1} 列），"
                                        "无法安全读取 (used range too large)")
        bound = SheetBound(name, "content.xml", last_row + 1, last_col)
        for r1, _r2, c1, c2, start, end in cells:
            if r1 > last_row or c1 > last_col:
                import html

                ref = f"{_letters(c1)}{r1 + 1}"
                bound.strays.append(ref)
                text = b" ".join(re.findall(rb">([^<]+)<", data[start:end]))
                bound.values[ref] = html.unescape(text.decode("utf-8", "replace"))[:60]
                bound.spans.append((start, end, c2 - c1 + 1))
        if len(bound.strays) > MAX_STRAYS:
            raise UnreadableWorkbook(p, f"工作表“{name}”在表格之外有 {len(bound.strays)} 个零散单元格"
                                        f"（如 {bound.strays[0]}），无法安全读取 (too many far cells)")
        out.append(bound)
    return out


def _trimmed_ods(path: str | os.PathLike[str], bounds: list[SheetBound]) -> bytes:
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


# An xlsb sheet is a stream of binary records (MS-XLSB 2.1.4): a type and a size, each a
# 7-bit varint, then the data. A row header (type 0) says the row; a cell record (types 2-11,
# the ones python-calamine reads) starts with its column; BrtWsDim (0x94) is the dimension.
_XLSB_ROW, _XLSB_DIM, _XLSB_END = 0x0000, 0x0094, 0x0092
_XLSB_CELLS = frozenset(range(0x0002, 0x000C))


def _xlsb_records(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(type, record start, data start, data end) of each record; stops at a truncated one."""
    i, n = 0, len(data)
    while i < n:
        start = i
        try:
            b = data[i]
            i += 1
            typ = b & 0x7F
            if b & 0x80:
                typ += (data[i] & 0x7F) << 7
                i += 1
            size = 0
            for k in range(4):
                b = data[i]
                i += 1
                size += (b & 0x7F) << (7 * k)
                if not b & 0x80:
                    break
        except IndexError:
            return
        yield typ, start, i, i + size
        i += size


def _xlsb_cells(data: bytes) -> Iterator[tuple[int, int, int, int, int, int]]:
    """(row, col, type, record start, data start, record end) of each cell record, rows and
    columns 0-based."""
    row = 0
    le = int.from_bytes
    for typ, start, at, end in _xlsb_records(data):
        if typ == _XLSB_ROW:
            row = le(data[at:at + 4], "little")
        elif typ in _XLSB_CELLS:
            yield row, le(data[at:at + 4], "little"), typ, start, at, end
        elif typ == _XLSB_END:
            return


def _xlsb_text(d: bytes, typ: int, shared: list[str]) -> str:
    """What a cell record's data ``d`` holds, for the message naming a far cell."""
    import struct

    try:
        if typ in (6, 8):
            n = int.from_bytes(d[8:12], "little")
            return d[12:12 + 2 * n].decode("utf-16-le", "replace")
        if typ == 7:
            k = int.from_bytes(d[8:12], "little")
            return shared[k] if k < len(shared) else ""
        if typ in (5, 9):
            return f"{struct.unpack('<d', d[8:16])[0]:g}"
    except struct.error:
        pass
    return ""


def _xlsb_shared(zf: zipfile.ZipFile) -> list[str]:
    try:
        data = zf.read("xl/sharedStrings.bin")
    except KeyError:
        return []
    out = []
    for typ, _s, at, _end in _xlsb_records(data):
        if typ == 0x0013:   # BrtSSTItem: a flags byte, then the text
            n = int.from_bytes(data[at + 1:at + 5], "little")
            out.append(data[at + 5:at + 5 + 2 * n].decode("utf-16-le", "replace"))
    return out


def _xlsb_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Zip part -> sheet name, from workbook.bin's sheet records and their relationships."""
    try:
        book = zf.read("xl/workbook.bin")
        rels = zf.read("xl/_rels/workbook.bin.rels")
    except KeyError:
        return {}
    targets = {}
    for m in _REL_RE.finditer(rels):
        rid, target = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(4), m.group(3))
        t = target.decode("utf-8", "replace").lstrip("/")
        targets[rid.decode()] = t if t.startswith("xl/") else f"xl/{t}"
    out: dict[str, str] = {}
    for typ, _s, at, end in _xlsb_records(book):
        if typ != 0x009C:   # BrtBundleSh: state, tab id, relationship id, name
            continue
        d = book[at:end]
        n = int.from_bytes(d[8:12], "little")
        rid = d[12:12 + 2 * n].decode("utf-16-le", "replace") if n != 0xFFFFFFFF else ""
        at2 = 12 + (2 * n if n != 0xFFFFFFFF else 0)
        m = int.from_bytes(d[at2:at2 + 4], "little")
        name = d[at2 + 4:at2 + 4 + 2 * m].decode("utf-16-le", "replace")
        if rid in targets:
            out[targets[rid]] = name
    return out


def _bound_xlsb(p: Path) -> list[SheetBound]:
    out: list[SheetBound] = []
    with zipfile.ZipFile(p) as zf:
        shared: list[str] | None = None
        for part, name in _xlsb_parts(zf).items():
            try:
                data = zf.read(part)
            except KeyError:
                continue
            for typ, _s, at, end in _xlsb_records(data[:HEAD]):
                if typ == _XLSB_DIM and end - at >= 16:
                    r1, r2, c1, c2 = (int.from_bytes(data[at + k:at + k + 4], "little") for k in (0, 4, 8, 12))
                    small = (r2 - r1 + 1) * (c2 - c1 + 1) <= CELL_BUDGET
                    break
            else:
                small = False
            if small:
                continue   # what the saving program says: the common case
            cells = list(_xlsb_cells(data))
            if not cells:
                continue
            rows = [c[0] for c in cells]
            cols = [c[1] for c in cells]
            if (max(rows) - min(rows) + 1) * (max(cols) - min(cols) + 1) <= CELL_BUDGET:
                continue
            last_row = block_end(rows, ROW_GAP)
            last_col = block_end(cols, COL_GAP)
            if (last_row + 1) * (last_col + 1) > CELL_BUDGET:
                raise UnreadableWorkbook(p, f"工作表“{name}”的已用区域过大（约 {last_row + 1} 行 × {last_col + 1} 列），"
                                            "无法安全读取 (used range too large)")
            bound = SheetBound(name, part, last_row + 1, last_col)
            for r, c, typ, start, at, end in cells:
                if r > last_row or c > last_col:
                    ref = f"{_letters(c)}{r + 1}"
                    if shared is None:
                        shared = _xlsb_shared(zf)
                    bound.strays.append(ref)
                    bound.values[ref] = _xlsb_text(data[at:end], typ, shared)[:60]
                    bound.spans.append((start, end, 0))
            if len(bound.strays) > MAX_STRAYS:
                raise UnreadableWorkbook(p, f"工作表“{name}”在表格之外有 {len(bound.strays)} 个零散单元格"
                                            f"（如 {bound.strays[0]}），无法安全读取 (too many far cells)")
            out.append(bound)
    return out


def _trimmed_xlsb_part(data: bytes, bound: SheetBound) -> bytes:
    parts, at = [], 0
    for start, end, _ in sorted(bound.spans):
        parts.append(data[at:start])
        at = end
    parts.append(data[at:])
    data = b"".join(parts)
    for typ, _s, a, end in _xlsb_records(data[:HEAD]):
        if typ == _XLSB_DIM and end - a >= 16:   # the dimension of what is left
            dim = (0).to_bytes(4, "little") + (bound.last_row - 1).to_bytes(4, "little") + \
                (0).to_bytes(4, "little") + bound.last_col.to_bytes(4, "little")
            data = data[:a] + dim + data[a + 16:]
            break
    return data


def trimmed_copy(path: str | os.PathLike[str], bounds: list[SheetBound]) -> bytes:
    """The workbook as bytes with the stray cells of ``bounds`` cut out (the file is not touched)."""
    import io

    if bounds and bounds[0].part == "content.xml":
        return _trimmed_ods(path, bounds)
    if bounds and bounds[0].part == _XLS_PART:
        return _trimmed_xls(path, bounds)
    by_part = {b.part: b for b in bounds}
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        shared: list[str] | None = None
        for info in src.infolist():
            data = src.read(info)
            bound = by_part.get(info.filename)
            if bound is not None and info.filename.endswith(".bin"):
                data = _trimmed_xlsb_part(data, bound)
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
                last = f"{_letters(bound.last_col)}{bound.last_row}".encode()
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



# An xls is an OLE compound file (MS-CFB) holding a "Workbook" stream of BIFF8 records: a type
# and a length (two bytes each), then the data. Each cell record starts with its row and column;
# calamine reads the cell types below and ignores BLANK (0x0201). A far cell is cut out by
# turning its record into a BLANK of the same length, in place, so no offset in the file moves.
_XLS_PART = "Workbook"
_FREE = 0xFFFFFFFA            # sector numbers from here up mark chain ends and free sectors
_XLS_CELLS = {0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD, 0x0006, 0x00BD}
_XLS_BLANK = (0x0201).to_bytes(2, "little")


def _u16(b: bytes, at: int) -> int:
    return int.from_bytes(b[at:at + 2], "little")


def _u32(b: bytes, at: int) -> int:
    return int.from_bytes(b[at:at + 4], "little")


def _cfb_workbook(data: bytes) -> tuple[bytes, list[int], int]:
    """(the Workbook stream, the file offset of each of its blocks, the block size).

    Raises ValueError on a file whose structure does not hold together: calamine then gives
    its own reason.
    """
    ssz, mssz = 1 << _u16(data, 0x1E), 1 << _u16(data, 0x20)
    if ssz not in (512, 4096) or mssz != 64:
        raise ValueError("sector size")
    limit = len(data) // ssz + 1

    def sector(n: int) -> int:
        at = (n + 1) * ssz
        if n >= _FREE or at + ssz > len(data) + ssz:
            raise ValueError("sector")
        return at

    difat = [_u32(data, 0x4C + 4 * i) for i in range(109)]
    nxt, guard = _u32(data, 0x44), 0
    while nxt < _FREE and guard < limit:
        at = sector(nxt)
        entries = [_u32(data, at + 4 * i) for i in range(ssz // 4)]
        difat += entries[:-1]
        nxt, guard = entries[-1], guard + 1
    fat: list[int] = []
    for n in [x for x in difat if x < _FREE][:_u32(data, 0x2C)]:
        at = sector(n)
        fat += [_u32(data, at + 4 * i) for i in range(ssz // 4)]

    def chain(start: int, table: list[int]) -> list[int]:
        out, n = [], start
        while n < _FREE:
            if n >= len(table) or len(out) > len(table):
                raise ValueError("chain")
            out.append(n)
            n = table[n]
        return out

    dirs = b"".join(data[sector(n):sector(n) + ssz] for n in chain(_u32(data, 0x30), fat))
    entries = []
    for at in range(0, len(dirs) - 127, 128):
        size = min(_u16(dirs, at + 0x40), 64)
        name = dirs[at:at + max(size - 2, 0)].decode("utf-16-le", "replace")
        entries.append((name, dirs[at + 0x42], _u32(dirs, at + 0x74), _u32(dirs, at + 0x78)))
    found = next((e for e in entries if e[1] == 2 and e[0].lower() in ("workbook", "book")), None)
    if found is None or not entries:
        raise ValueError("no Workbook stream")
    _name, _typ, start, size = found
    if size < _u32(data, 0x38):     # a small stream lives in the mini stream (64-byte blocks)
        minifat: list[int] = []
        for n in chain(_u32(data, 0x3C), fat):
            at = sector(n)
            minifat += [_u32(data, at + 4 * i) for i in range(ssz // 4)]
        root = chain(entries[0][2], fat)
        offsets = []
        for m in chain(start, minifat):
            pos = m * mssz
            if pos // ssz >= len(root):
                raise ValueError("mini stream")
            offsets.append(sector(root[pos // ssz]) + pos % ssz)
        block = mssz
    else:
        offsets = [sector(n) for n in chain(start, fat)]
        block = ssz
    stream = b"".join(data[o:o + block] for o in offsets)[:size]
    return stream, offsets, block


def _biff_records(stream: bytes, at: int) -> Iterator[tuple[int, int, bytes]]:
    """(type, offset, data) of each record from ``at``; stops at the end or a truncated one."""
    n = len(stream)
    while at + 4 <= n:
        typ, size = _u16(stream, at), _u16(stream, at + 2)
        if at + 4 + size > n:
            return
        yield typ, at, stream[at + 4:at + 4 + size]
        at += 4 + size


def _xls_sst(stream: bytes) -> list[str]:
    """The shared strings (SST and its CONTINUE records), for naming a far cell's text."""
    chunks: list[bytes] = []
    for typ, _at, d in _biff_records(stream, 0):
        if typ == 0x00FC:
            chunks = [d[8:]]
        elif typ == 0x003C and chunks:
            chunks.append(d)
        elif chunks:
            break
    out: list[str] = []
    ci, pos = 0, 0
    try:
        while ci < len(chunks):
            d = chunks[ci]
            if pos >= len(d):
                ci, pos = ci + 1, 0
                continue
            cch, flags = _u16(d, pos), d[pos + 2]
            pos += 3
            runs = ext = 0
            if flags & 0x08:
                runs, pos = _u16(d, pos), pos + 2
            if flags & 0x04:
                ext, pos = _u32(d, pos), pos + 4
            text, wide, left = "", flags & 0x01, cch
            while left:
                d = chunks[ci]
                if len(d) - pos < (2 if wide else 1):   # the text goes on in the next CONTINUE, new flags
                    ci, d = ci + 1, chunks[ci + 1]
                    wide, pos = d[0] & 0x01, 1
                    continue
                width = 2 if wide else 1
                take = min(left, (len(d) - pos) // width)
                raw = d[pos:pos + take * width]
                text += raw.decode("utf-16-le" if wide else "latin-1", "replace")
                pos, left = pos + take * width, left - take
            pos += 4 * runs + ext
            while ci < len(chunks) and pos > len(chunks[ci]):   # formatting runs may go on too
                pos -= len(chunks[ci])
                ci += 1
            out.append(text)
    except (IndexError, ValueError):
        pass
    return out


def _xls_value(typ: int, d: bytes, sst: list[str] | None) -> str:
    import struct

    try:
        if typ == 0x0203:
            return f"{struct.unpack('<d', d[6:14])[0]:g}"
        if typ == 0x027E:
            rk = _u32(d, 6)
            v = float(rk >> 2) if rk & 2 else struct.unpack("<d", ((rk & 0xFFFFFFFC) << 32).to_bytes(8, "little"))[0]
            return f"{v / 100 if rk & 1 else v:g}"
        if typ in (0x0204, 0x00D6):
            cch, wide = _u16(d, 6), d[8] & 0x01
            return d[9:9 + cch * (2 if wide else 1)].decode("utf-16-le" if wide else "latin-1", "replace")
        if typ == 0x00FD and sst is not None:
            k = _u32(d, 6)
            return sst[k] if k < len(sst) else ""
    except (struct.error, IndexError):
        pass
    return ""


def _bound_xls(p: Path) -> list[SheetBound]:
    data = p.read_bytes()
    try:
        stream, _offsets, _block = _cfb_workbook(data)
    except (ValueError, IndexError):
        return []   # calamine says what is wrong with it
    bof = next(_biff_records(stream, 0), None)
    if bof is None or bof[0] != 0x0809 or _u16(bof[2], 0) != 0x0600:
        return []   # only BIFF8 (Excel 97 and later, WPS): older files hold at most 16,384 rows
    sheets = [(_u32(d, 0), d) for typ, _at, d in _biff_records(stream, 0) if typ == 0x0085 and len(d) > 8
              and d[5] == 0]
    out: list[SheetBound] = []
    sst: list[str] | None = None
    for pos, d in sheets:
        cch, wide = d[6], d[7] & 0x01
        name = d[8:8 + cch * (2 if wide else 1)].decode("utf-16-le" if wide else "latin-1", "replace")
        cells: list[tuple[int, int, int, int, int, bytes]] = []   # row, first col, last col, type, offset, data
        dim_at, depth, small = -1, 0, False
        for typ, at, rd in _biff_records(stream, pos):
            if typ == 0x0809:
                depth += 1
            elif typ == 0x000A:
                depth -= 1
                if depth <= 0:
                    break
            elif depth != 1:
                continue   # an embedded chart's own records
            elif typ == 0x0200 and len(rd) >= 12:
                dim_at = at
                rows, cols = _u32(rd, 4) - _u32(rd, 0), _u16(rd, 10) - _u16(rd, 8)
                small = rows * cols <= CELL_BUDGET
                if small:
                    break   # what the saving program says: the common case
            elif typ in _XLS_CELLS and len(rd) >= 6:
                last = _u16(rd, len(rd) - 2) if typ == 0x00BD else _u16(rd, 2)
                cells.append((_u16(rd, 0), _u16(rd, 2), last, typ, at, rd))
        if small or not cells:
            continue
        rows_ = [c[0] for c in cells]
        if (max(rows_) + 1) * (max(c[2] for c in cells) + 1) <= CELL_BUDGET:
            continue
        last_row = block_end(rows_, ROW_GAP)
        last_col = _interval_end([(c[1], c[2]) for c in cells], COL_GAP)
        bound = SheetBound(name, _XLS_PART, last_row + 1, last_col)
        for r, c1, _c2, typ, at, rd in cells:
            if r <= last_row and c1 <= last_col:
                continue
            ref = f"{_letters(c1)}{r + 1}"
            if typ == 0x00FD and sst is None:
                sst = _xls_sst(stream)
            bound.strays.append(ref)
            bound.values[ref] = _xls_value(typ, rd, sst)[:60]
            bound.patches.append((at, _XLS_BLANK))
            if typ == 0x0006:   # a formula's text result follows in its own STRING record
                nxt = next(_biff_records(stream, at + 4 + len(rd)), None)
                if nxt is not None and nxt[0] == 0x0207:
                    bound.patches.append((nxt[1], _XLS_BLANK))
        if (last_row + 1) * (last_col + 1) > CELL_BUDGET:
            raise UnreadableWorkbook(p, f"工作表“{name}”的已用区域过大（约 {last_row + 1} 行 × {last_col + 1} 列），"
                                        "无法安全读取 (used range too large)")
        if len(bound.strays) > MAX_STRAYS:
            raise UnreadableWorkbook(p, f"工作表“{name}”在表格之外有 {len(bound.strays)} 个零散单元格"
                                        f"（如 {bound.strays[0]}），无法安全读取 (too many far cells)")
        if dim_at >= 0:   # the dimension of what is left: calamine reserves room for it
            bound.patches.append((dim_at + 4, (0).to_bytes(4, "little") + (last_row + 1).to_bytes(4, "little")
                                  + (0).to_bytes(2, "little") + (last_col + 1).to_bytes(2, "little")))
        out.append(bound)
    return out


def _trimmed_xls(path: str | os.PathLike[str], bounds: list[SheetBound]) -> bytes:
    data = bytearray(Path(path).read_bytes())
    _stream, offsets, block = _cfb_workbook(bytes(data))
    for bound in bounds:
        for at, new in bound.patches:
            for k, byte in enumerate(new):   # byte by byte: a record may cross a block boundary
                q = at + k
                data[offsets[q // block] + q % block] = byte
    return bytes(data)
