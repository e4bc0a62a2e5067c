"""What a manager changed in the merged workbook, found without holding its rows (issue 17).

Reading a manager's save back compares each manager column (全部投诉's 主管批示, 处罚's
处罚确认) with ``_rendered``, the record of what this store wrote there. Holding a dict per
complaint of both (``readback.read_manager_edits``) took 323 MiB at 100,000 complaints as
Excel saves them and 852 MiB at 300,000. Here each row leaves a few numbers behind: a hash of
its key and a token per manager cell, either the number of the shared string it shows (a
package has one shared string per distinct text, so one number is one text) or a hash of its
text. Only the rows whose tokens differ from what was written are read again, exactly, and
compared as ``readback._changed`` compares them: the manager's edits, plus the few that only
look different (a date a shop typed, written to ``_rendered`` as text), which come out equal.

It reads only a workbook keyed by 记录标识 / 事件编号 with a ``_rendered`` record. Anything
else (a package laid out otherwise, an old workbook keyed by shop and id) gives None and the
caller reads the workbook whole, as before; so does a workbook another store wrote, which is
adopted whole (``store_id`` tells the caller).

Two different keys with the same 63-bit hash (Python's own string hash, seeded per process)
would compare one complaint's cell with the other's written value: about one chance in twenty
million at a million rows, and a fresh seed at the next read.
"""

from __future__ import annotations

import itertools
import json
import logging
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store.view import RowKey
from .colread import (
    EMPTY,
    SharedRef,
    cell_value,
    date_styles,
    each_shared,
    open_package,
    row_list,
    shared_limit,
    sheet_part,
    stream_cells,
)
from .model import SheetData
from .readback import (
    RENDERED_SHEET,
    STORE_MARK,
    Cells,
    _cell_text,
    _changed,
    _key_text,
    _table,
    overlay,
)

log = logging.getLogger("complaint_desk.merged")

_MASK = (1 << 63) - 1
_HEAD = 5            # the header is within a sheet's first rows (as readback._read_sheet looks)
# Rows whose cells are not shared strings (numbers, dates; every text in a workbook this
# program wrote, copied as is) are kept as they are, up to this many, for the exact comparison;
# past it the candidate rows are read from the file again.
SIDE_ROWS = 20_000


def _text_token(text: str) -> int:
    """A non-empty text's token: positive (a shared string's is negative; empty is 0)."""
    return (hash(text) & _MASK) or 1


def _key_hash(key: tuple[Any, ...]) -> int:
    return (hash(key) & _MASK) or 1


def _json_key_hash(text: str) -> int:
    """The hash of the key ``_rendered`` writes as JSON; 0 for a text that is no key."""
    inner = text[2:-2]
    if text[:2] == '["' and text[-2:] == '"]' and '"' not in inner and "\\" not in inner and inner.isprintable():
        return _key_hash((inner,))   # one text that JSON writes as it is: 记录标识, the common key
    try:
        parts = json.loads(text)
        return _key_hash(tuple(parts)) if isinstance(parts, list) else 0
    except (ValueError, TypeError):   # not JSON, or a list in the list (no key this program wrote)
        return 0


def _blank(raw: Any) -> bool:
    return raw is None or raw is EMPTY


@dataclass
class Found:
    """What the manager changed (``edits``, by sheet) and the store that wrote the workbook."""

    store_id: str | None
    edits: Cells


class _Otherwise(Exception):
    """The workbook is not laid out as this way of reading expects: read it whole instead."""


class _Bits:
    """A set of shared-string numbers, a bit each, below ``limit`` (how many the package's
    table can hold): a cell naming string 10^11 must not make a 12 GB set."""

    def __init__(self, limit: int) -> None:
        self.bits = bytearray()
        self.limit = limit

    def add(self, i: int) -> None:
        if i >= self.limit:
            raise _Otherwise(f"shared string {i} past the table's {self.limit} possible items")
        byte = i >> 3
        if byte >= len(self.bits):
            self.bits.extend(bytes(byte + 1 - len(self.bits) + (len(self.bits) >> 1)))
        self.bits[byte] |= 1 << (i & 7)

    def union(self, *others: _Bits) -> bytes:
        size = max(len(b.bits) for b in (self, *others))
        out = int.from_bytes(self.bits, "little")
        for other in others:
            out |= int.from_bytes(other.bits, "little")
        return out.to_bytes(size, "little")


class _Hashes:
    """Shared-string number -> hash, filled in number order (so looked up by bisection)."""

    def __init__(self) -> None:
        self.numbers = array("q")
        self.hashes = array("q")

    def add(self, i: int, h: int) -> None:
        self.numbers.append(i)
        self.hashes.append(h)

    def get(self, i: int) -> int:
        at = bisect_left(self.numbers, i)
        return self.hashes[at] if at < len(self.numbers) and self.numbers[at] == i else 0


class _Scan:
    """The package being read, and the shared strings its rows need."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zf = open_package(path)
        self.dates = date_styles(self.zf)
        self.names: dict[int, str] = {}            # token -> text of _rendered's sheet and column cells
        self.shared_limit = shared_limit(self.zf)
        self.name_bits, self.json_bits, self.key_bits = (_Bits(self.shared_limit) for _ in range(3))

    def close(self) -> None:
        self.zf.close()

    def value(self, raw: Any) -> Any:
        return cell_value(raw, {}, self.dates)

    def token(self, raw: Any) -> int:
        """A cell's token (its shared string's number, or its text's hash; 0: empty)."""
        if _blank(raw):
            return 0
        if isinstance(raw, SharedRef):
            return -1 - raw.index
        text = _key_text(self.value(raw))
        return _text_token(text) if text else 0

    def name(self, raw: Any) -> int:
        """The token of a sheet or column name of ``_rendered``, its text kept (few distinct)."""
        token = self.token(raw)
        if isinstance(raw, SharedRef):
            self.name_bits.add(raw.index)
        elif token:
            self.names[token] = _key_text(self.value(raw))
        return token

    def read_shared(self) -> tuple[_Hashes, _Hashes]:
        """Read the shared strings the rows need, in one pass: the names' texts, and the
        hashes of the keys (``_rendered``'s, written as JSON, and the sheets')."""
        json_keys, keys = _Hashes(), _Hashes()
        # the bits tested in place: 600,000 strings asked at 300,000 complaints
        names, jsons, plain = self.name_bits.bits, self.json_bits.bits, self.key_bits.bits
        for i, text in each_shared(self.zf, self.path, self.name_bits.union(self.json_bits, self.key_bits)):
            byte, bit = i >> 3, 1 << (i & 7)
            if byte < len(names) and names[byte] & bit:
                self.names[-1 - i] = text
            if byte < len(jsons) and jsons[byte] & bit:
                json_keys.add(i, _json_key_hash(text))
            if byte < len(plain) and plain[byte] & bit:
                keys.add(i, _key_hash((text,)) if text else 0)
        return json_keys, keys

    def texts(self, raws: Iterable[Any]) -> dict[int, str]:
        """The texts of the shared strings among ``raws``."""
        wanted = _Bits(self.shared_limit)
        for raw in raws:
            if isinstance(raw, SharedRef):
                wanted.add(raw.index)
        return dict(each_shared(self.zf, self.path, wanted.bits)) if wanted.bits else {}


class _Side:
    """Cells that are not shared strings, kept by row up to ``SIDE_ROWS`` rows; past that none
    are kept, and the exact comparison reads the rows it needs from the file again."""

    def __init__(self) -> None:
        self.cells: dict[int, dict[int, Any]] = {}
        self.full = False

    def keep(self, row: int, cells: dict[int, Any]) -> None:
        if self.full:
            return
        if len(self.cells) >= SIDE_ROWS:
            self.cells.clear()
            self.full = True
            return
        self.cells[row] = cells


def _raw(token: int, side: dict[int, Any] | None, col: int) -> tuple[Any, bool]:
    """A cell back from its token: (raw cell, found); a text's hash needs its kept cell."""
    if token < 0:
        return SharedRef(-1 - token), True
    if token == 0:
        return None, True
    if side is None or col not in side:
        return None, False
    return side[col], True


class _Written:
    """``_rendered``'s rows as tokens: sheet and column (interned), key hash, value."""

    def __init__(self) -> None:
        self.sheet, self.column = array("i"), array("i")
        self.key, self.value = array("q"), array("q")
        self.ids: dict[int, int] = {}       # name token -> its number in ``sheet`` / ``column``
        self.tokens: list[int] = []
        self.side = _Side()
        self.first_key: Any = None         # the raw key of the first row (the store's id, when it is _store's)

    def _intern(self, token: int) -> int:
        at = self.ids.get(token)
        if at is None:
            at = self.ids[token] = len(self.tokens)
            self.tokens.append(token)
        return at

    def read(self, scan: _Scan, part: str) -> None:
        rows = stream_cells(scan.zf, part, scan.path, {0, 1, 2, 3})
        next(rows, None)   # its header
        first = True
        for pos, (_n, cells) in enumerate(rows):
            sheet = scan.name(cells.get(0))
            key = cells.get(1)
            if first and sheet:
                first = False
                self.first_key = key
                if isinstance(key, SharedRef):
                    scan.name_bits.add(key.index)
            if isinstance(key, SharedRef):
                scan.json_bits.add(key.index)
                key_token = -1 - key.index
            else:
                text = "" if _blank(key) else _key_text(scan.value(key))
                key_token = _json_key_hash(text) if text else 0
            value = cells.get(3)
            if not _blank(value) and not isinstance(value, SharedRef):
                self.side.keep(pos, {3: value})
            self.sheet.append(self._intern(sheet))
            self.key.append(key_token)
            self.column.append(self._intern(scan.name(cells.get(2))))
            self.value.append(scan.token(value))

    def resolve(self, json_keys: _Hashes) -> None:
        keys = self.key
        for i, k in enumerate(keys):
            if k < 0:
                keys[i] = json_keys.get(-1 - k)

    def store_id(self, scan: _Scan) -> str | None:
        """The id of the store that wrote the workbook (None: none recorded); ``_Otherwise``
        when a ``_store`` row is not the first (not as this program writes it)."""
        marks = [i for i, s in enumerate(self.tokens) if scan.names.get(s) == STORE_MARK]
        rows = [i for i, s in enumerate(self.sheet) if s in marks] if marks else []
        if not rows:
            return None
        if rows != [0]:
            raise _Otherwise("the store's row of _rendered is not its first")
        raw = self.first_key
        if isinstance(raw, SharedRef):
            return scan.names.get(-1 - raw.index, "")
        return "" if _blank(raw) else str(scan.value(raw))


class _Table:
    """The ``_rendered`` rows of one sheet by key hash: open addressing in arrays (a dict
    would hold two int objects a row), each key's rows chained newest first."""

    def __init__(self, written: _Written, scan: _Scan, sheet: str, columns: dict[str, int]) -> None:
        sheet_ids = {i for i, t in enumerate(written.tokens) if scan.names.get(t) == sheet}
        column_of = {i: columns[n] for i, t in enumerate(written.tokens) if (n := scan.names.get(t)) in columns}

        def rows() -> Iterator[int]:   # counted, then walked: no list of a row number each
            keys, sheets, cols = written.key, written.sheet, written.column
            return (i for i in range(len(keys)) if keys[i] and sheets[i] in sheet_ids and cols[i] in column_of)

        count = sum(1 for _ in rows()) if sheet_ids and column_of else 0
        size = 1 << max(4, (2 * count).bit_length())
        self.mask = size - 1
        self.keys = array("q", bytes(8 * size))
        self.first = array("i", [-1]) * size
        self.next = array("i", [-1]) * len(written.key) if count else array("i")
        self.column = array("b", bytes(len(written.key))) if count else array("b")
        self.written = written
        for i in rows() if count else ():
            kh = written.key[i]
            slot = self._slot(kh)
            self.keys[slot] = kh
            self.next[i] = self.first[slot]
            self.first[slot] = i
            self.column[i] = column_of[written.column[i]]

    def _slot(self, kh: int) -> int:
        keys, mask = self.keys, self.mask
        slot = kh & mask
        while (k := keys[slot]) and k != kh:
            slot = (slot + 1) & mask
        return slot

    def rows(self, kh: int) -> Iterator[int]:
        """The ``_rendered`` rows of key hash ``kh``, newest first."""
        i = self.first[self._slot(kh)]
        while i >= 0:
            yield i
            i = self.next[i]

    def before(self, kh: int, width: int) -> list[int]:
        """The value tokens written under ``kh``, by column (0: none)."""
        out = [0] * width
        done = [False] * width
        for i in self.rows(kh):
            c = self.column[i]
            if not done[c]:
                out[c], done[c] = self.written.value[i], True
        return out


@dataclass
class _Layout:
    """Where a sheet's table is: its header row's columns and first rows."""

    part: str
    key_at: int
    owned: list[tuple[str, int]]          # (column key, index) of each manager column present
    top: list[list[Any]]                  # the data rows among the first rows, values read
    streamed_from: int                    # where the rows after ``top`` start

    @property
    def columns(self) -> list[int]:
        """The key's column, then each manager column's."""
        return [self.key_at, *(at for _k, at in self.owned)]


class _Got:
    """A sheet's rows as tokens: the key's (shared string number or hash), its hash, and each
    manager cell's."""

    def __init__(self, owned: int) -> None:
        self.key = array("q")
        self.hash = array("q")
        self.cells = [array("q") for _ in range(owned)]
        self.side = _Side()


def _layout(scan: _Scan, sheet: SheetData) -> _Layout | None:
    """The sheet's table, None when the workbook has no such sheet or table; ``_Otherwise``
    when it is keyed otherwise (an old workbook: by shop and id)."""
    try:
        part = sheet_part(scan.zf, scan.path, sheet.name)
    except Exception:  # noqa: BLE001 - no such sheet: nothing typed there (as read_manager_edits)
        return None
    rows = stream_cells(scan.zf, part, scan.path, None)
    head = list(itertools.islice(rows, _HEAD))
    rows.close()
    if not head:
        return None
    texts = scan.texts(v for _n, cells in head for v in cells.values())
    top = [row_list({c: cell_value(v, texts, scan.dates) for c, v in cells.items()}) for _n, cells in head]
    if len(sheet.key_columns) != 1:
        raise _Otherwise(f"{sheet.name} keyed by {sheet.key_columns}")
    found = _table(top, sheet, sheet.key_columns)
    if found is None:
        if sheet.legacy_key_columns and _table(top, sheet, sheet.legacy_key_columns) is not None:
            raise _Otherwise(f"{sheet.name} keyed by {sheet.legacy_key_columns}")
        return None
    index, under = found
    owned = [(c.key, index[c.key]) for c in sheet.columns if c.manager_owned and c.key in index]
    return _Layout(part, index[sheet.key_columns[0]], owned, list(under), head[0][0] + len(head))


def _data_rows(scan: _Scan, layout: _Layout) -> Iterator[dict[int, Any]]:
    """The raw cells (key and manager columns) of each row under the header, in order."""
    for row in layout.top:
        yield dict(enumerate(row))
    for _n, cells in stream_cells(scan.zf, layout.part, scan.path, set(layout.columns), layout.streamed_from):
        yield cells


def _read_got(scan: _Scan, layout: _Layout) -> _Got:
    got = _Got(len(layout.owned))
    columns = layout.columns
    for j, cells in enumerate(_data_rows(scan, layout)):
        raw = cells.get(layout.key_at)
        if isinstance(raw, SharedRef):
            scan.key_bits.add(raw.index)
        if any(not _blank(v := cells.get(c)) and not isinstance(v, SharedRef) for c in columns):
            got.side.keep(j, {c: cells.get(c) for c in columns})
        if isinstance(raw, SharedRef) or _blank(raw):
            got.key.append(scan.token(raw))
        else:   # typed as is: the one-cell key's hash at once (its text is in the side, or read again)
            text = _key_text(scan.value(raw))
            got.key.append(_key_hash((text,)) if text else 0)
        for tokens, (_k, at) in zip(got.cells, layout.owned, strict=True):
            tokens.append(scan.token(cells.get(at)))
    return got


def _resolve_got(got: _Got, keys: _Hashes) -> None:
    """Each row's key hash: a shared string's key as its text read, the others' as they came."""
    hashes = got.hash
    for token in got.key:
        hashes.append(keys.get(-1 - token) if token < 0 else token)


def _candidates(got: _Got, table: _Table, width: int, since_keys: set[int]) -> set[int]:
    """The key hashes of the rows to compare exactly: each row whose manager cells' tokens
    differ from what was written under its key, or whose cells were read back since."""
    out: set[int] = set()
    cells = got.cells
    for j, kh in enumerate(got.hash):
        if kh == 0:
            continue
        if kh in since_keys:
            out.add(kh)
            continue
        before = table.before(kh, width)
        if any(cells[c][j] != before[c] for c in range(width)):
            out.add(kh)
    return out


def _exact(scan: _Scan, layout: _Layout, got: _Got, table: _Table, keys: set[int], rendered_part: str,
           since: dict[RowKey, dict[str, Any]]) -> dict[RowKey, dict[str, Any]]:
    """``readback._changed`` over the rows of the ``keys``: their cells and what was written
    under them, as cells again (from their tokens, or read from the file again)."""
    rows = [j for j, kh in enumerate(got.hash) if kh in keys]   # every row of a key: the last one wins
    marks = sorted({i for kh in keys for i in table.rows(kh)})
    columns = layout.columns
    picked: list[dict[int, Any]] = []
    complete = True
    for j in rows:
        side = got.side.cells.get(j)
        cells: dict[int, Any] = {}
        for c, token in zip(columns, [got.key[j], *(t[j] for t in got.cells)], strict=True):
            cells[c], found = _raw(token, side, c)
            complete = complete and found
        if not complete:
            break
        picked.append(cells)
    if not complete:   # a cell not kept (past SIDE_ROWS): read those rows from the file again
        wanted = set(rows)
        picked = [cells for j, cells in enumerate(_data_rows(scan, layout)) if j in wanted]
    written: list[tuple[int, Any]] = []   # (row of _rendered, raw value)
    for i in marks:
        raw, found = _raw(table.written.value[i], table.written.side.cells.get(i), 3)
        if not found:
            wanted = set(marks)
            again = itertools.islice(stream_cells(scan.zf, rendered_part, scan.path, {3}), 1, None)
            written = [(i, cells.get(3)) for i, (_n, cells) in enumerate(again) if i in wanted]
            break
        written.append((i, raw))
    texts = scan.texts([*(v for cells in picked for v in cells.values()), *(v for _i, v in written)])

    def value(raw: Any) -> Any:
        return None if _blank(raw) else cell_value(raw, texts, scan.dates)

    got_cells: dict[RowKey, dict[str, Any]] = {}
    for cells in picked:
        key = (_key_text(value(cells.get(layout.key_at))),)
        if any(key):
            got_cells[key] = {k: _cell_text(value(cells.get(at))) for k, at in layout.owned}
    names = [k for k, _at in layout.owned]
    by_hash: dict[int, dict[str, Any]] = {}
    for i, raw in written:    # oldest first: a later row of the same cell wins
        by_hash.setdefault(table.written.key[i], {})[names[table.column[i]]] = _cell_text(value(raw))
    before = {key: dict(by_hash[kh]) for key in got_cells if (kh := _key_hash(key)) in by_hash}
    return _changed(got_cells, overlay(before, {k: v for k, v in since.items() if k in got_cells}))


def changed_cells(path: Path, sheets: Iterable[SheetData], since: Cells) -> Found | None:
    """What was changed in ``sheets`` of the workbook at ``path`` since this program wrote it
    (``since``: cells read back after that write, compared with as written), as
    ``read_manager_edits`` and ``rebase`` find it; None when this way cannot tell (see the
    module's note): the caller reads the workbook whole."""
    try:
        scan = _Scan(path)
    except Exception as exc:  # noqa: BLE001 - the whole read reports what is wrong with the file
        log.debug("editscan: %s", exc)
        return None
    try:
        return _changed_cells(scan, list(sheets), since)
    except Exception as exc:  # noqa: BLE001 - a torn or unexpected package: read it whole instead
        log.debug("editscan: %s", exc)
        return None
    finally:
        scan.close()


def _changed_cells(scan: _Scan, sheets: list[SheetData], since: Cells) -> Found | None:
    try:
        rendered_part = sheet_part(scan.zf, scan.path, RENDERED_SHEET)
    except Exception:  # noqa: BLE001 - no record of what was written: every cell is the manager's
        return None
    written = _Written()
    written.read(scan, rendered_part)
    tables: list[tuple[SheetData, _Layout, _Got]] = []
    for sheet in sheets:
        if any(c.manager_owned for c in sheet.columns) and (layout := _layout(scan, sheet)) is not None:
            tables.append((sheet, layout, _read_got(scan, layout)))
    json_keys, keys = scan.read_shared()
    store_id = written.store_id(scan)
    written.resolve(json_keys)
    del json_keys
    for _sheet, _at, got in tables:
        _resolve_got(got, keys)
    del keys
    edits: Cells = {}
    for sheet, layout, got in tables:
        width = len(layout.owned)
        table = _Table(written, scan, sheet.name, {k: n for n, (k, _at) in enumerate(layout.owned)})
        mine = since.get(sheet.name, {})
        keys_to_check = _candidates(got, table, width, {_key_hash(key) for key in mine})
        edits[sheet.name] = _exact(scan, layout, got, table, keys_to_check, rendered_part, mine) if keys_to_check else {}
    return Found(store_id, edits)
