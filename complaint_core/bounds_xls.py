"""Far cells of an xls: found in the BIFF8 records of its OLE container, blanked in place in a copy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from .bounds import (
    CELL_BUDGET,
    COL_GAP,
    ROW_GAP,
    SheetBound,
    block_end,
    interval_end,
    letters,
    refuse_too_many,
)
from .errors import UnreadableWorkbook

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
        links = [_u32(data, at + 4 * i) for i in range(ssz // 4)]
        difat += links[:-1]
        nxt, guard = links[-1], guard + 1
    fat: list[int] = []
    for n in [x for x in difat if x < _FREE][:_u32(data, 0x2C)]:
        at = sector(n)
        fat += [_u32(data, at + 4 * i) for i in range(ssz // 4)]

    def chain(start: int, table: list[int]) -> list[int]:
        out: list[int] = []
        n = start
        while n < _FREE:
            if n >= len(table) or len(out) > len(table):
                raise ValueError("chain")
            out.append(n)
            n = table[n]
        return out

    dirs = b"".join(data[sector(n):sector(n) + ssz] for n in chain(_u32(data, 0x30), fat))
    entries: list[tuple[str, int, int, int]] = []
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


def bound_xls(p: Path) -> list[SheetBound]:
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
        last_col = interval_end([(c[1], c[2]) for c in cells], COL_GAP)
        bound = SheetBound(name, _XLS_PART, last_row + 1, last_col)
        for r, c1, _c2, typ, at, rd in cells:
            if r <= last_row and c1 <= last_col:
                continue
            ref = f"{letters(c1)}{r + 1}"
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
        refuse_too_many(p, bound)
        if dim_at >= 0:   # the dimension of what is left: calamine reserves room for it
            bound.patches.append((dim_at + 4, (0).to_bytes(4, "little") + (last_row + 1).to_bytes(4, "little")
                                  + (0).to_bytes(2, "little") + (last_col + 1).to_bytes(2, "little")))
        out.append(bound)
    return out


def trimmed_xls(path: str | os.PathLike[str], bounds: list[SheetBound]) -> bytes:
    data = bytearray(Path(path).read_bytes())
    _stream, offsets, block = _cfb_workbook(bytes(data))
    for bound in bounds:
        for at, new in bound.patches:
            for k, byte in enumerate(new):   # byte by byte: a record may cross a block boundary
                q = at + k
                data[offsets[q // block] + q % block] = byte
    return bytes(data)
