"""Far cells of an xlsb: found in the sheet's binary records, cut out of a copy."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

from .bounds import (
    CELL_BUDGET,
    COL_GAP,
    REL_RE,
    ROW_GAP,
    SheetBound,
    block_end,
    letters,
    refuse_too_many,
)
from .errors import UnreadableWorkbook
from .safety import HEAD

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
    for m in REL_RE.finditer(rels):
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
        chars = int.from_bytes(d[at2:at2 + 4], "little")
        name = d[at2 + 4:at2 + 4 + 2 * chars].decode("utf-16-le", "replace")
        if rid in targets:
            out[targets[rid]] = name
    return out


def bound_xlsb(p: Path) -> list[SheetBound]:
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
                    ref = f"{letters(c)}{r + 1}"
                    if shared is None:
                        shared = _xlsb_shared(zf)
                    bound.strays.append(ref)
                    bound.values[ref] = _xlsb_text(data[at:end], typ, shared)[:60]
                    bound.spans.append((start, end, 0))
            refuse_too_many(p, bound)
            out.append(bound)
    return out


def trimmed_xlsb_part(data: bytes, bound: SheetBound) -> bytes:
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
