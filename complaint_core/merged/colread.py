"""A few columns of a big sheet, read without loading the sheet (issue 17).

Before each rewrite that follows a manager's save, the daemon reads back what managers typed
into the merged workbook: the 记录标识 and 主管批示 columns of 全部投诉, two of its forty-one.
python-calamine loads a whole sheet before handing out its first row (455 MiB for 100,000
complaints once Excel has saved the workbook), so here the sheet's XML is streamed out of the
package: once for the cells of the asked columns (shared strings kept as their numbers), then
through the shared strings for the texts those cells use. Memory follows the asked cells, not
the sheet.

The values are those calamine gives (tests/test_colread.py compares them on workbooks written
by us, openpyxl and LibreOffice): text as typed, numbers as float, booleans, and datetimes for
numbers whose cell format is a date. Anything this reader does not expect raises
``ColumnsUnreadable``; the caller then reads the sheet with calamine, as before.
"""

from __future__ import annotations

import html
import re
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..bounds import col_index, sheet_parts
from ..errors import ComplaintDeskError
from ..model import column_letter

_BLOCK = 1 << 20
_ROW = re.compile(rb"<row\b([^>]*?)(?:/>|>(.*?)</row>)", re.S)
_CELL = re.compile(rb"<c\b([^>]*?)(?:/>|>(.*?)</c>)", re.S)
_ATTR = re.compile(rb'\b(r|t|s)="([^"]*)"')
_V = re.compile(rb"<v>(.*?)</v>", re.S)
_T = re.compile(rb"<t\b([^>]*?)(?:/>|>(.*?)</t>)", re.S)
_XML_BLANKS = b" \t\n\r"
_PHONETIC = re.compile(rb"<rPh\b.*?</rPh>", re.S)
_SI = re.compile(rb"<si\b[^>]*?(?:/>|>(.*?)</si>)", re.S)
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")
_LETTERS = re.compile(rb"[A-Z]+")
_EPOCH = datetime(1899, 12, 30)
_LAST_ROW = 1_048_576       # Excel's, WPS's and LibreOffice's last row
# built-in number formats that show a date or a time (ECMA-376 18.8.30, and the CJK ones)
_DATE_IDS = frozenset({*range(14, 23), *range(27, 37), 45, 46, 47, *range(50, 59)})
_FORMAT_TEXT = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]')


class ColumnsUnreadable(ComplaintDeskError):
    """The package is not laid out as this reader expects (the caller falls back to calamine)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


def sheet_bytes(path: Path, sheet: str) -> int:
    """The uncompressed size of ``sheet``'s XML (what calamine would hold, and more)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.getinfo(_sheet_part(zf, path, sheet)).file_size
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ColumnsUnreadable(path, f"not a package ({exc})") from exc


def read_columns(path: Path, sheet: str, pick: Callable[[list[list[Any]]], set[int]],
                 head: int = 5) -> Iterator[list[Any]]:
    """The rows of ``sheet`` as calamine's ``iter_rows`` gives them, except that after the first
    ``head`` rows (given whole) only the columns ``pick(first rows)`` names carry values.
    Rows are counted from the first row that has a value, gaps included, as calamine does.

    The package is read before this returns: a ``ColumnsUnreadable`` comes from the call, never
    half-way through the rows."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ColumnsUnreadable(path, f"not a package ({exc})") from exc
    with zf:
        part = _sheet_part(zf, path, sheet)
        dates = _date_styles(zf)
        top: list[list[Any]] = []
        first = 0
        for n, cells in _rows(zf, part, path, None, 0):
            first = first or n
            top.append(_as_list(cells))
            if len(top) == head:
                break
        wanted = {v.index for row in top for v in row if isinstance(v, _Shared)}
        texts = _shared(zf, wanted, path)
        top = [[_value(v, texts, dates) for v in row] for row in top]
        keep = pick(top)
        if not keep:
            # e.g. a writer that prefixes its tags (<x:row>): nothing here to go by, never "no cells"
            raise ColumnsUnreadable(path, f"none of the asked columns in the first rows of {sheet!r}")
        # the rest: only the picked columns, shared strings by number until their texts are read
        rest: list[dict[int, Any]] = []
        wanted = set()
        for _n, cells in _rows(zf, part, path, keep, first + len(top)):
            rest.append(cells)
            wanted.update(v.index for v in cells.values() if isinstance(v, _Shared))
        while rest and not rest[-1]:
            rest.pop()   # formatted rows below the table (LibreOffice writes them): no values
        texts = _shared(zf, wanted, path)
    return _emit(top, rest, texts, dates)


def _emit(top: list[list[Any]], rest: list[dict[int, Any]], texts: dict[int, str],
          dates: set[int]) -> Iterator[list[Any]]:
    yield from top
    for cells in rest:
        row: list[Any] = [None] * (max(cells) + 1) if cells else []
        for col, value in cells.items():
            row[col] = _value(value, texts, dates)
        yield row


def _as_list(cells: dict[int, Any]) -> list[Any]:
    out: list[Any] = [None] * (max(cells) + 1) if cells else []
    for col, value in cells.items():
        out[col] = value
    return out


class _Shared:
    """A cell that shows shared string number ``index``."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class _Styled:
    """A number cell with a cell format (a date when the format is one)."""

    __slots__ = ("number", "style")

    def __init__(self, number: float, style: int) -> None:
        self.number, self.style = number, style


def _value(v: Any, texts: dict[int, str], dates: set[int]) -> Any:
    if isinstance(v, _Shared):
        return texts.get(v.index, "")
    if isinstance(v, _Styled):
        if v.style in dates:
            # Excel's day 60 is a 29 February 1900 that never was
            base = _EPOCH if v.number >= 61 else datetime(1899, 12, 31)
            # to the millisecond, as calamine rounds (a stored 9:30 is 09:30:00.000001 in float)
            return base + timedelta(milliseconds=round(v.number * 86_400_000))
        return v.number
    return v


def _sheet_part(zf: zipfile.ZipFile, path: Path, sheet: str) -> str:
    part = next((p for p, name in sheet_parts(zf).items() if name == sheet), None)
    if part is None or part not in zf.NameToInfo:
        raise ColumnsUnreadable(path, f"no sheet {sheet!r}")
    return part


def _date_styles(zf: zipfile.ZipFile) -> set[int]:
    """The cell formats (``s`` of a cell) whose number format shows a date or a time."""
    try:
        styles = zf.read("xl/styles.xml")
    except KeyError:
        return set()
    custom: dict[int, bool] = {}
    for m in re.finditer(rb"<numFmt\b([^>]*)/?>", styles):
        attrs = dict(re.findall(rb'(\w+)="([^"]*)"', m.group(1)))
        if b"numFmtId" in attrs:
            code = _FORMAT_TEXT.sub("", html.unescape(attrs.get(b"formatCode", b"").decode())).lower()
            custom[int(attrs[b"numFmtId"])] = any(ch in code for ch in "dmyhs")
    xfs = re.search(rb"<cellXfs\b[^>]*>(.*?)</cellXfs>", styles, re.S)
    out: set[int] = set()
    if xfs is None:
        return out
    for i, m in enumerate(re.finditer(rb"<xf\b([^>]*?)/?>", xfs.group(1))):
        found = re.search(rb'\bnumFmtId="(\d+)"', m.group(1))
        fmt = int(found.group(1)) if found else 0
        if custom.get(fmt, fmt in _DATE_IDS):
            out.add(i)
    return out


def _chunks(zf: zipfile.ZipFile, name: str, end: bytes) -> Iterator[bytes]:
    """The part's bytes cut after a complete ``end`` tag, about a MiB at a time."""
    with zf.open(name) as fh:
        rest = b""
        while block := fh.read(_BLOCK):
            rest += block
            cut = rest.rfind(end)
            if cut >= 0:
                cut += len(end)
                yield rest[:cut]
                rest = rest[cut:]
        if rest:
            yield rest


def _column(ref: bytes) -> int:
    letters = _LETTERS.match(ref)
    if letters is None:
        raise ValueError(f"cell reference {ref!r}")
    return col_index(letters.group())


def _rows(zf: zipfile.ZipFile, part: str, path: Path, keep: set[int] | None,
          start: int) -> Generator[tuple[int, dict[int, Any]], None, None]:
    """(row number, cells by column) from row ``start`` on (0: from the first row that has a
    value, where calamine's rows start), rows without a cell (not in the XML) given empty."""
    expect: int | None = start or None
    last = 0
    try:
        for chunk in _chunks(zf, part, b"</row>"):
            placed, only, kept = _layout(chunk, keep)
            if kept is not None:
                # every cell names its place: the rows are those its kept cells name, as calamine
                # places a cell by its own reference (a row with none of them is a gap below)
                rows: Iterable[tuple[int, dict[int, Any]]] = kept
            else:
                rows = _each_row(chunk, placed, only, keep, last)
            for n, cells in rows:
                if n > _LAST_ROW:   # no spreadsheet has it: the rows up to it would all be made
                    raise ValueError(f"row {n} past a sheet's last row")
                last = n
                if expect is not None and n < expect:
                    continue
                if expect is None:
                    if not cells:
                        continue
                    expect = n
                while expect < n:
                    yield expect, {}
                    expect += 1
                yield n, cells
                expect = n + 1
    except (KeyError, ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ColumnsUnreadable(path, f"{part}: {exc}") from exc


def _each_row(chunk: bytes, placed: set[int] | None, only: re.Pattern[bytes] | None, keep: set[int] | None,
              last: int) -> Iterator[tuple[int, dict[int, Any]]]:
    """(row number, kept cells) of each ``<row>`` of a stretch, row by row: a row without ``r``
    follows the one before it (``last``: the number of the row before the stretch)."""
    for row_attrs, begin, end in _row_elements(chunk):
        n = int(attrs[b"r"]) if b"r" in (attrs := _attributes(row_attrs)) else last + 1
        last = n
        got = _placed(chunk[begin:end], placed) if placed is not None else None
        yield n, (got if got is not None else _cells(chunk[begin:end], keep, only))


def _layout(chunk: bytes, keep: set[int] | None) -> tuple[set[int] | None, re.Pattern[bytes] | None,
                                                         list[tuple[int, dict[int, Any]]] | None]:
    """How the kept columns' cells of a stretch are read: (``placed``: by their place in the
    row, ``only``: by a search of each row for them, ``kept``: found in the whole stretch at
    once); all None: every cell of each row parsed.

    The checks look at the stretch a few times over, so the cheap ones come first: a 1 MiB
    stretch of 4,000 cells took 2.4 ms to count its cells by the regex (a quarter of reading
    back 100,000 complaints as Excel saves them)."""
    if not keep:
        return None, None, None
    # Each check passes over the whole stretch (XML is mostly tags: even a count of "<c" costs
    # as much as a search), so the first cell says which to try first.
    first = _CELL_START.search(chunk)
    if first is not None and chunk.startswith(b'<c r="', first.start()):
        # every "<c" of the stretch starts ``<c r="`` (as Excel, WPS and LibreOffice save): the
        # kept columns' cells of the whole stretch are found by one search, not row by row,
        # which also tells whether the stretch is so
        if (kept := _kept(chunk, keep)) is not None:
            return None, None, kept
    # no "<c" but a cell's start, and no cell (nor row) names its place: the merged workbook
    # as this program writes it, a cell's column is its place in the row
    elif _none_numbered(chunk):
        return keep, None, None
    # every cell names its place, somewhere among its attributes: only the kept ones parsed
    return None, (_only(keep) if _all_numbered(chunk) else None), None


_WORDY_C = re.compile(rb"<c\w")               # a tag that is not a cell (<col>, <cfRule>, …)
_CELL_START = re.compile(rb"<c\b")
_NUMBERED = re.compile(rb"<c\b[^>]*?\sr=\"")
_ROW_START = re.compile(rb"<row\b")


def _row_elements(xml: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(attributes, where the content starts, where it ends) of each ``<row>`` element, as
    ``_ROW`` would find them, by plain searches for the ends: the regex's lazy scan to
    ``</row>`` was a third of reading back 100,000 rows."""
    find = xml.find
    pos = 0
    while (m := _ROW_START.search(xml, pos)) is not None:
        close = find(b">", m.end())
        if close < 0:
            return
        if xml[close - 1:close] == b"/":      # <row .../>
            yield xml[m.end():close - 1], close, close
            pos = close + 1
            continue
        end = find(b"</row>", close + 1)
        if end < 0:
            return
        yield xml[m.end():close], close + 1, end
        pos = end + 6


def _kept(xml: bytes, keep: set[int]) -> list[tuple[int, dict[int, Any]]] | None:
    """(row number, cells) of each row of ``xml`` that has a cell with a value in the ``keep``
    columns, when every cell of ``xml`` starts ``<c r="`` (None otherwise: a cell whose place
    is not its first attribute). One search over the stretch finds the kept cells with the
    column letters and the row number right after ``r="``, where looking into each row for them
    was half of reading back 100,000 complaints as Excel saves them (4.8 s). Cells without a
    value are left out, as ``_cells`` leaves them."""
    column = {column_letter(c).encode(): c for c in keep}
    out: list[tuple[int, dict[int, Any]]] = []
    row = -1
    cells: dict[int, Any] = {}
    for letters, number, attrs, body in _pattern(_R_FIRST, keep).findall(xml):
        if not letters:   # a "<c" that is not ``<c r="``: this stretch is read another way
            return None
        value = _value_of(_attributes(attrs), body)
        if value is _EMPTY:
            continue
        n = int(number)
        if n != row:
            row, cells = n, {}
            out.append((n, cells))
        cells[column[letters]] = value
    return out


_ATTRIBUTES: dict[bytes, dict[bytes, bytes]] = {}


def _attributes(raw: bytes) -> dict[bytes, bytes]:
    """The ``r``, ``t`` and ``s`` of a tag's attributes. A sheet's cells share a few dozen
    attribute texts once their place is left out (`` s="3" t="s"``), so each is parsed once;
    a text with a place in it (a row's, or a cell whose place is not first) is parsed anew."""
    got = _ATTRIBUTES.get(raw)
    if got is None:
        got = dict(_ATTR.findall(raw))
        if b"r" not in got and len(_ATTRIBUTES) < 4096:
            _ATTRIBUTES[raw] = got
    return got


# how an attribute ``r`` can start: after the blank that ends the name or attribute before it
_R_ATTR = (b' r="', b'\tr="', b'\nr="', b'\rr="')


def _none_numbered(xml: bytes) -> bool:
    """Whether every "<c" of ``xml`` starts a cell (no other tag of the stretch starts so) and
    none names its place (nor does any row: no ``r`` at all)."""
    if _WORDY_C.search(xml) is not None:
        return False
    return b'r="' not in xml or not any(r in xml for r in _R_ATTR)


def _placed(xml: bytes, keep: set[int]) -> dict[int, Any] | None:
    """The kept cells of a row whose cells do not name their place, by their place; None when
    a cell is not as expected there (``_cells`` then reads the row as before)."""
    # the stretch has no other tag beginning "<c" (``_none_numbered``): each piece between
    # them is one cell, ``<c`` left out, cut by hand (a regex per cell was a fifth of reading
    # back 300,000 complaints)
    parts = xml.split(b"<c")
    out: dict[int, Any] = {}
    for col in keep:
        if col + 1 >= len(parts):
            continue
        piece = parts[col + 1]
        if piece == b"/>":
            continue   # <c/>, an empty cell: what most of a row's are
        if piece[-4:] != b"</c>":
            piece = piece.rstrip(_XML_BLANKS)   # blanks between cells
        close = piece.find(b">")
        if close < 0 or piece[:1] not in _AFTER_C:
            return None
        if piece[close - 1:close] == b"/":
            if close + 1 != len(piece):
                return None
            continue   # <c s="3"/>: no value
        if piece[-4:] != b"</c>" or close + 1 > len(piece) - 4:
            return None
        value = _value_of(_attributes(piece[:close]), piece[close + 1:-4])
        if value is not _EMPTY:
            out[col] = value
    return out


_AFTER_C = (b" ", b">", b"/", b"\t", b"\n", b"\r")   # what follows "<c" at a cell's start


# The cells of some columns (LETTERS: their letters), by where a cell names its place: first
# (group 1 the letters, 2 the row number, 3 the other attributes, 4 the content; or a cell
# whose first attribute is not its place, all groups empty: <col> and <cfRule> are no cells),
# or anywhere among its attributes (group 1 the attributes, 2 the content)
_R_FIRST = rb'<c(?: r="(LETTERS)(\d+)"([^>]*?)(?:/>|>(.*?)</c>)|\b(?! r="))'
_R_ANYWHERE = rb'<c\b([^>]*?\sr="(?:LETTERS)\d+"[^>]*?)(?:/>|>(.*?)</c>)'
_PATTERNS: dict[tuple[bytes, frozenset[int]], re.Pattern[bytes]] = {}


def _pattern(template: bytes, keep: set[int]) -> re.Pattern[bytes]:
    """``template`` for the ``keep`` columns, compiled once."""
    key = (template, frozenset(keep))
    if key not in _PATTERNS:
        letters = "|".join(column_letter(c) for c in sorted(keep)).encode()
        _PATTERNS[key] = re.compile(template.replace(b"LETTERS", letters), re.S)
    return _PATTERNS[key]


def _only(keep: set[int]) -> re.Pattern[bytes]:
    """The cells of the ``keep`` columns in a row whose every cell names its place (``r``), as
    Excel, WPS and LibreOffice write: the other thirty-odd cells of the row are not parsed."""
    return _pattern(_R_ANYWHERE, keep)


def _all_numbered(xml: bytes) -> bool:
    """Whether each cell of ``xml`` names its place. A cell's start tag cannot appear in text
    (``<`` is escaped there), so the counts are exact."""
    count = len(_CELL_START.findall(xml))
    return bool(count) and count == len(_NUMBERED.findall(xml))


def _cells(xml: bytes, keep: set[int] | None, only: re.Pattern[bytes] | None = None) -> dict[int, Any]:
    out: dict[int, Any] = {}
    at = 0
    for cm in (only or _CELL).finditer(xml):
        attrs = _attributes(cm.group(1))
        col = _column(attrs[b"r"]) if b"r" in attrs else at
        at = col + 1
        if keep is not None and col not in keep:
            continue
        value = _value_of(attrs, cm.group(2))
        if value is not _EMPTY:
            out[col] = value
    return out


_EMPTY = object()   # a cell without a value (no content, or no <v>)


def _value_of(attrs: dict[bytes, bytes], body: bytes | None) -> Any:
    """A cell's value from its attributes and content, as ``_value`` later reads it; ``_EMPTY``
    for a cell without one."""
    if not body:
        return _EMPTY
    kind = attrs.get(b"t", b"n")
    if kind == b"inlineStr":
        return _text(body)
    v = _V.search(body)
    if v is None:
        return _EMPTY
    raw = v.group(1)
    if kind == b"s":
        return _Shared(int(raw))
    if kind in (b"str", b"e"):
        return _unescape(raw)
    if kind == b"b":
        return raw.strip() == b"1"
    number = float(raw)
    return _Styled(number, int(attrs[b"s"])) if b"s" in attrs else number


def _unescape(raw: bytes) -> str:
    text = html.unescape(raw.decode("utf-8"))
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text) if "_x" in text else text


def _text(body: bytes) -> str:
    """A string item's text: its runs joined, phonetic guides (rPh) left out. A run not marked
    ``xml:space="preserve"`` loses its blanks at both ends, as calamine reads it (Excel marks
    every text that keeps them; openpyxl does not mark one of blanks only)."""
    if body[:3] == b"<t>" and body[-4:] == b"</t>" and body.count(b"<") == 2:
        return _unescape(body[3:-4].strip(_XML_BLANKS))   # one run, unmarked: most texts
    if body[:7] == b"<is><t>" and body[-9:] == b"</t></is>" and body.count(b"<") == 4:
        return _unescape(body[7:-9].strip(_XML_BLANKS))   # the same inline (as this program writes)
    if b"<rPh" in body:
        body = _PHONETIC.sub(b"", body)
    runs = [(run if b"preserve" in attrs else run.strip(_XML_BLANKS)) for attrs, run in _T.findall(body)]
    return _unescape(runs[0]) if len(runs) == 1 else "".join(map(_unescape, runs))


def _shared(zf: zipfile.ZipFile, wanted: set[int], path: Path) -> dict[int, str]:
    """The texts of the shared strings numbered in ``wanted`` (``each_shared``)."""
    if not wanted:
        return {}
    top = max(wanted)
    if _SHARED not in zf.NameToInfo:
        raise ColumnsUnreadable(path, "shared strings used but absent")
    if top >= shared_limit(zf):
        raise ColumnsUnreadable(path, f"shared string {top} missing")   # never a bitmap that big
    bits = bytearray(top // 8 + 1)
    for i in wanted:
        bits[i >> 3] |= 1 << (i & 7)
    return dict(each_shared(zf, path, bits))


# The streaming pieces above, for merged/editscan.py: what a manager changed, found by
# comparing the sheets cell by cell without holding them.

SharedRef = _Shared          # a cell showing a shared string not read yet (``.index``)
EMPTY = _EMPTY               # a cell without a value


def open_package(path: Path) -> zipfile.ZipFile:
    """The workbook's package, or ``ColumnsUnreadable``."""
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ColumnsUnreadable(path, f"not a package ({exc})") from exc


def sheet_part(zf: zipfile.ZipFile, path: Path, sheet: str) -> str:
    """The package part holding ``sheet``, or ``ColumnsUnreadable``."""
    return _sheet_part(zf, path, sheet)


def date_styles(zf: zipfile.ZipFile) -> set[int]:
    """The cell formats that show a date or a time."""
    return _date_styles(zf)


def stream_cells(zf: zipfile.ZipFile, part: str, path: Path, keep: set[int] | None,
                 start: int = 0) -> Generator[tuple[int, dict[int, Any]], None, None]:
    """(row number, raw cells by column) of each row of ``part`` from ``start`` (0: from the
    first row with a value), one at a time; only the ``keep`` columns (None: all). A raw cell is
    a ``SharedRef``, a text, a number, a boolean, or a number with its format (``cell_value``
    reads it)."""
    return _rows(zf, part, path, keep, start)


def row_list(cells: dict[int, Any]) -> list[Any]:
    """Cells by column as a row list (None where there is none), as calamine gives a row."""
    return _as_list(cells)


def cell_value(raw: Any, texts: dict[int, str], dates: set[int]) -> Any:
    """A raw cell's value as calamine gives it (``texts``: the shared strings it may show)."""
    return _value(raw, texts, dates)


_SHARED = "xl/sharedStrings.xml"
_MAX_SHARED = 1 << 27


def shared_limit(zf: zipfile.ZipFile) -> int:
    """How many shared strings the package's table can hold: each item is at least "<si/>", so
    no more than a fifth of its bytes, nor than ``_MAX_SHARED`` (a declared size can lie; a
    bitmap of that many is 16 MiB). A cell naming string 10^11 must not make a 12 GB bitmap."""
    info = zf.NameToInfo.get(_SHARED)
    return min(info.file_size // 5, _MAX_SHARED) if info is not None else 0


def each_shared(zf: zipfile.ZipFile, path: Path, wanted: bytes | bytearray) -> Iterator[tuple[int, str]]:
    """(number, text) of each shared string whose bit is set in ``wanted`` (bit ``i & 7`` of
    byte ``i >> 3``), read up to the last of them; ``ColumnsUnreadable`` when the package has
    fewer. A stretch of the table with none of them is counted, not parsed: the table holds
    every text of the workbook (216 MiB at 300,000 complaints), and most are not asked."""
    top = len(wanted) * 8 - 1
    while top >= 0 and not wanted[top >> 3] >> (top & 7) & 1:
        top -= 1
    if top < 0:
        return
    if _SHARED not in zf.NameToInfo:
        raise ColumnsUnreadable(path, "shared strings used but absent")

    def asked_of(i: int, n: int) -> int:   # the bits of items i to i + n - 1, item i lowest
        a = i >> 3
        return int.from_bytes(wanted[a:((i + n) >> 3) + 1], "little") >> (i - (a << 3)) & ((1 << n) - 1)

    i = 0
    try:
        for chunk in _chunks(zf, _SHARED, b"</si>"):
            # each item ends "</si>" when no tag but an item's begins "<si" and none is empty
            # (<si/>): then the items are the pieces between the ends (XML is mostly tags: a
            # count of a tag costs as much as cutting the stretch at it)
            n = chunk.count(b"<si")
            asked = asked_of(i, n)
            if asked:
                items = chunk.split(b"</si>")
                exact = len(items) - 1 == n
            else:
                items, exact = [], n == chunk.count(b"</si>")
            if not exact:
                items = []   # another tag begins "<si", or an item is empty: counted exactly
                n = chunk.count(b"<si>") + chunk.count(b"<si ") + chunk.count(b"<si/>")
                asked = asked_of(i, n)
            if asked and items:
                # the asked ones are taken by their number, not every item parsed (most of
                # the table's texts are not asked)
                while asked:
                    low = asked & -asked
                    asked ^= low
                    k = low.bit_length() - 1
                    item = items[k]
                    if item[:4] == b"<si>":   # most: no attributes, nothing before it
                        yield i + k, _text(item[4:])
                        continue
                    start = item.rfind(b"<si")
                    close = item.find(b">", start)
                    if start < 0 or close < 0 or item[start + 3:start + 4] not in (b">", b" "):
                        raise ColumnsUnreadable(path, f"{_SHARED}: item {i + k} not as expected")
                    yield i + k, _text(item[close + 1:])
            elif asked:
                for k, m in enumerate(_SI.finditer(chunk)):
                    if asked >> k & 1:
                        yield i + k, _text(m.group(1) or b"")
            i += n
            if i > top:
                return
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ColumnsUnreadable(path, f"{_SHARED}: {exc}") from exc
    raise ColumnsUnreadable(path, f"shared string {top} missing")
