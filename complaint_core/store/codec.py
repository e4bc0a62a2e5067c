"""How a stored row is written: canonical JSON of its values, and a hash of that JSON.

No SQLAlchemy here: the reader's child processes encode the rows they read (in parallel, on
every core) and the daemon only stores them.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import operator
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeAlias, cast

from ..deadlines import Deadlines, deadlines
from ..heap import drained
from ..model import ComplaintTable, Finding, Invalid, SourceRow
from ..overdue import feedback_given
from ..schema import DATETIME_KEYS, MAX_ID_CHARS, MAX_SHOP_CHARS
from ..settings import DEFAULTS, Settings
from ..values import no_nul
from . import dcjson


def _fast_json() -> Any:
    """orjson where its wheel is installed (every platform the shops use has one); None: json
    alone, which reads the same values, only slower."""
    try:
        import orjson
    except ImportError:
        return None
    return orjson


_orjson: Any = _fast_json()


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        # the same text without the keyword when there is no fraction (as the reader gives
        # moments): 0.3 µs instead of 0.5, six times a row
        return value.isoformat() if not value.microsecond else value.isoformat(timespec="seconds")
    if isinstance(value, Invalid):
        return str(value.raw)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


# A naive moment as SQLAlchemy stores it on SQLite (store/bulk.py checks it is the same text)
ISO_TEXT = operator.methodcaller("isoformat", " ", "microseconds")


def moment_text(value: Any) -> Any:
    """A naive moment as the store's text (``ISO_TEXT``); anything else as it is. The reader
    children send a file's moments so: seven per row, and a datetime costs six times as much to
    send between processes as its text; SQLite stores the text as it comes (issue 17)."""
    return ISO_TEXT(value) if value.__class__ is datetime and value.tzinfo is None else value


_PLAIN = frozenset({str, int, float, bool})

# How a stored row's JSON is written (``canonical``). 1: the standard library's, with ", " and
# ": " between items; 2: compact, written by orjson. The hash of a row is the hash of these
# bytes, so a store holds one format only: ``store.reencode`` rewrites the rows of an older one
# once, when it is opened (a row of the old format would otherwise read as changed, or as a
# conflict beside the same complaint in the new one).
ROW_JSON = 2
# the same text as orjson writes, for the values orjson refuses (integers past 64 bits)
_COMPACT = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    """A row's values as its JSON holds them: empty cells left out, moments as text."""
    # most cells are text or numbers, stored as they are; the type test is the cheap one
    return {k: v if type(v) in _PLAIN else _encode(v) for k, v in values.items() if v is not None}


def encode_values(values: dict[str, Any], extras: dict[str, Any] | None = None) -> str:
    return _encoded(_stored(values), extras).decode()


def _encoded(doc: dict[str, Any], extras: dict[str, Any] | None) -> bytes:
    if extras:
        doc["_extras"] = {k: v if type(v) in _PLAIN else _encode(v) for k, v in extras.items()}
    return canonical(doc)


def canonical(doc: Any) -> bytes:
    """A row's stored JSON (format ``ROW_JSON``): keys sorted, no spaces, UTF-8.

    orjson writes it in a third of the standard library's time (a chain's first merge encodes
    every complaint in the reader children: 13-16 µs a row less, issue 17). Where orjson would
    not write the value as it is, the standard library writes it: an integer past 64 bits
    (orjson refuses it) and NaN or infinity (orjson writes null, and the row would read back
    without its value). The same value is always written the same way, so its hash is too.
    (Without orjson, which every install has as a dependency: the same bytes but for some floats.)
    """
    if _orjson is not None:
        try:
            data: bytes = _orjson.dumps(doc, option=_orjson.OPT_SORT_KEYS)
        except TypeError:   # orjson.JSONEncodeError is one: an integer past 64 bits, or a lone surrogate
            pass
        else:
            # a null in the text is rare (the stored values leave empty cells out): only then
            # is the row looked at for a number orjson wrote as null
            if b"null" not in data or not _not_finite(doc):
                # copied to its own size: orjson's bytes keep the buffer it wrote into, 4 KiB
                # at least, and a reader child holds a whole file's rows before sending them
                # (a row of 1.4 KB took 4 KiB or more: 19 MiB more for a shop file of 3,000
                # complaints, 210 MiB for 30,000)
                return bytes(memoryview(data))
    return _COMPACT.encode(doc).encode("utf-8")


def _not_finite(value: Any) -> bool:
    """Whether ``value`` holds a float that is NaN or infinite (anywhere in its dicts and lists)."""
    items = value.values() if isinstance(value, dict) else value
    for v in items:
        if isinstance(v, float):
            if not math.isfinite(v):
                return True
        elif isinstance(v, (dict, list)) and _not_finite(v):
            return True
    return False


# Numbers past 64 bits: orjson reads an integer out there as a float (silently), json as the
# very integer the row held; a float out there is rare enough to be read twice
_BIG = 2.0 ** 63


def _exact(value: Any) -> bool:
    """Whether ``value`` (what orjson read) holds no float from an integer orjson could not hold."""
    items = value.values() if value.__class__ is dict else value
    for v in items:
        kind = v.__class__
        if kind is float:
            if not -_BIG < v < _BIG:
                return False
        elif (kind is dict or kind is list) and not _exact(v):
            return False
    return True


def loads(text: str | bytes) -> Any:
    """``json.loads`` of a text the store wrote: the same value, about twice as fast.

    A write of the merged workbook decodes every stored complaint (14 µs each of 100,000, a
    tenth of the piece makers' time). orjson reads the standard library's JSON to the same
    values except where it refuses it (NaN and Infinity, a lone surrogate: json reads those)
    and integers past 64 bits, which it reads as floats (``_exact`` finds them: json again)."""
    if _orjson is None:
        return json.loads(text)
    try:
        value = _orjson.loads(text)
    except _orjson.JSONDecodeError:
        return json.loads(text)
    return value if _exact((value,)) else json.loads(text)


_SPACE = re.compile(r"[ \t\n\r]*")   # matches everywhere (maybe nothing)
_ONE = json.JSONDecoder()


def each_in_array(data: str | bytes | Iterable[bytes]) -> Iterator[Any]:
    """The items of the JSON array ``data`` one at a time, as ``loads`` would give them (the
    standard library's decoder, item by item): a big array's items need not all be held at
    once. UTF-8 (``bytes``, or its pieces as they are read) is decoded a piece at a time as the
    items are taken (a big file's findings as text took twice their bytes: 11 MiB for 30,000
    complaints). Raises ``ValueError`` (``json.JSONDecodeError``) where ``data`` is not an array."""
    text = _Window(data)

    def space(at: int) -> int:
        while True:
            end = cast(re.Match[str], _SPACE.match(text.buf, at)).end()
            if end < len(text.buf) or not text.more():
                return end

    def sign(at: int) -> str:
        if at >= len(text.buf):
            text.more()
        return text.buf[at:at + 1]

    at = space(0)
    if sign(at) != "[":
        raise json.JSONDecodeError("an array was expected", text.buf, at)
    at = space(at + 1)
    if sign(at) == "]":
        return
    while True:
        decoded = len(text.buf)
        try:
            item, end = _ONE.raw_decode(text.buf, at)
        except json.JSONDecodeError:
            if text.more():
                continue   # the item goes on past what is decoded: taken again with more of it
            raise
        if end >= decoded and text.more():
            continue   # a number or a word up to where the decoded text ends may go on past it
        after = space(end)
        mark = sign(after)
        if mark not in (",", "]"):
            if text.more():
                continue   # a number cut where the decoded text ends ("12" of "12.5"): again, whole
            raise json.JSONDecodeError("',' or ']' was expected", text.buf, after)
        yield item
        if mark == "]":
            return
        at = space(text.drop(after + 1))


class _Window:
    """What ``each_in_array`` has decoded of its array and not yet taken (all of it for a str)."""

    _PIECE = 1 << 18   # bytes decoded at a time

    def __init__(self, data: str | bytes | Iterable[bytes]) -> None:
        if isinstance(data, str):
            self.buf, self.ended = data, True
            return
        self._pieces: Iterator[bytes | memoryview] = (
            byte_pieces(data, self._PIECE) if isinstance(data, bytes) else iter(data))
        # as json.loads reads bytes: a lone surrogate written by the standard library is kept
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
        self.buf, self.ended = "", False
        self.more()

    def more(self) -> bool:
        """Decode the next piece onto the window; False: there is no more."""
        if self.ended:
            return False
        piece = next(self._pieces, None)
        if piece is None:
            self.ended = True
            self.buf += self._decoder.decode(b"", final=True)   # raises for a character cut short
            return False
        self.buf += self._decoder.decode(piece)
        return True

    def drop(self, at: int) -> int:
        """Let go of the text before ``at`` (taken); where ``at`` is now."""
        if at < self._PIECE:
            return at
        self.buf = self.buf[at:]
        return 0


def decode_values(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = loads(text)
    for key in DATETIME_KEYS & doc.keys():
        try:
            doc[key] = datetime.fromisoformat(doc[key])
        except (TypeError, ValueError):
            pass  # kept as the text the shop typed (it was reported as bad_datetime)
    return doc


def content_hash(text: str | bytes) -> str:
    """The hash of a row's stored JSON (its UTF-8 bytes, when the caller has them already)."""
    return content_hash_of([text if isinstance(text, bytes) else text.encode("utf-8")])


def content_hash_of(pieces: Iterable[bytes | memoryview]) -> str:
    """``content_hash`` of the UTF-8 these pieces make, read one after another."""
    h = hashlib.sha256()
    for piece in pieces:
        h.update(piece)
    return h.hexdigest()[:32]


# The merged workbook's sheet of every complaint: its manager cells are keyed by record_ref.
ALL_SHEET = "全部投诉"


def record_ref(key: str) -> str:
    """The short reference 全部投诉 shows for a record (column 记录标识): managers' cells are kept
    by it, so a row without an id or with a repeated id keeps its own 主管批示."""
    return "R" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:11].upper()


def record_key(shop: str, complaint_id: str | None, path: str, anchor: str, repeated: bool = False) -> str:
    """Which complaint a stored row belongs to.

    A row with an id is that shop's complaint wherever it is (two files holding it are one
    complaint, shown on 冲突 if they differ). A row without an id cannot be matched across
    files: it is keyed by its file and its anchor, so re-sorting the sheet does not change it.
    An id the file uses twice (``repeated``) cannot tell its rows apart: the anchor does.
    """
    if complaint_id and repeated:
        return f"{shop}\x1f{complaint_id}\x1f@{path}#{anchor}"
    return f"{shop}\x1f{complaint_id}" if complaint_id else f"{shop}\x1f@{path}#{anchor}"


def key_shop(key: str) -> str:
    """The shop a ``record_key`` belongs to (it starts every key)."""
    return key.split("\x1f", 1)[0]


# What the store needs of one row: (sheet row, shop, complaint id, 最后更新, JSON, hash,
# identity anchor, (contact due, feedback due, follow-up due) as the engine computed them, sheet,
# (contact done, feedback done, follow-up done, no deadlines) for the scan's query). The JSON is
# UTF-8 bytes: a file's rows wait in the daemon until they are stored, and Chinese text as
# ``str`` takes twice the memory (issue 17); ingest decodes it as it writes. The moments are
# the store's text of a naive moment (``moment_text``; a zone-aware one stays a datetime):
# sent between processes, a datetime costs six times its text.
Moment: TypeAlias = "str | datetime | None"
PreparedRow = tuple[int, str, "str | None", Moment, bytes, str, str, "Dues", str, "ScanFields"]
Dues = tuple[Moment, Moment, Moment]
ScanFields = tuple[Moment, Moment, Moment, bool]


class FindingsText(Protocol):
    """A file's findings' JSON kept apart while its file waited to be stored (a temporary file,
    isolate.Packed): its size in bytes and its UTF-8, a piece at a time."""

    def __len__(self) -> int: ...

    def pieces(self) -> Iterator[bytes]: ...


def byte_pieces(data: bytes, size: int) -> Iterator[memoryview]:
    """``data`` in pieces of ``size`` bytes, none of them a copy."""
    view = memoryview(data)
    return (view[at:at + size] for at in range(0, len(view), size))


def findings_pieces(found: bytes | FindingsText, piece: int = 1 << 18) -> Iterator[bytes | memoryview]:
    """The UTF-8 of a prepared file's findings a piece at a time, however it is held."""
    return byte_pieces(found, piece) if isinstance(found, bytes) else found.pieces()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A shop file ready to store: made in the reader's child, small to send to the daemon
    (no cell dicts, no finding objects), so the daemon only runs SQL."""

    sheet: str                   # the first table's sheet; each row carries its own
    # a list where made; in the daemon, the slices a reader child sent (isolate.PackedRows),
    # unpickled as they are iterated
    rows: Sequence[PreparedRow]
    # UTF-8 (``encode_findings``); in the daemon, a big file's kept apart until stored
    findings_json: bytes | FindingsText
    findings: int
    shop: str = ""            # the shop this file speaks for (its 设置 code, else its folder)
    settings_json: str = ""   # the file's 设置 as dcjson (every deadline below used these)


def file_shop(table: ComplaintTable | list[ComplaintTable], path: Path) -> str:
    """The shop a workbook speaks for: its 设置 shop code; without one (an old or home-made
    workbook), the shop that most of its rows name in 门店, if more than half of them agree
    (several shops' files may share one folder); else the folder the shop saves into.

    A single row's 门店 never overrides it: a file cannot write another shop's complaints.
    """
    tables = table if isinstance(table, list) else [table]
    code = next((t.shop_code for t in tables if t.shop_code), None)
    if code and len(no_nul(str(code).strip())) <= MAX_SHOP_CHARS:
        return no_nul(str(code).strip())
    named = Counter(no_nul(str(v).strip()) for t in tables for r in t.rows
                    if (v := r.values.get("shop")) is not None and not isinstance(v, Invalid) and str(v).strip())
    if named:
        shop, n = named.most_common(1)[0]
        if n * 2 > sum(named.values()) and len(shop) <= MAX_SHOP_CHARS:
            return shop
    return path.parent.name


def foreign_shop(row_values: dict[str, Any], shop: str) -> str | None:
    """The other shop a row claims in its 门店 cell, or None when it claims none or its own."""
    claimed = row_values.get("shop")
    if claimed is None or isinstance(claimed, Invalid):
        return None
    text = str(claimed).strip()
    return text if text and text.casefold() != shop.casefold() else None


ANCHOR_KEYS = ("received_at", "customer_name", "customer_phone", "customer_email", "description")


def anchor(values: dict[str, Any]) -> str:
    """What a shop types first and rarely changes: recognises a row without an id (or with an id
    used twice) after the shop re-sorts or inserts rows (docs/sync.md, "How a row is recognised")."""
    return _anchor({k: _encode(v) for k in ANCHOR_KEYS if (v := values.get(k)) is not None})


def _anchor(doc: dict[str, Any]) -> str:
    """``anchor`` of a row from its stored values (``_stored``: the same texts ``_encode`` makes)."""
    get = doc.get
    raw = "\x1f".join([str(get(k) or "").strip() for k in ANCHOR_KEYS])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def foreign_shop_findings(table: ComplaintTable, path: Path, own: str | None = None) -> list[Finding]:
    from ..findings import make_finding

    own = own or file_shop(table, path)
    return [make_finding(table, row.row, "shop", "foreign_shop", own=own, value=other)
            for row in table.rows if (other := foreign_shop(row.values, own)) is not None]


def engine_dues(values: dict[str, Any], settings: Settings) -> Dues:
    d = deadlines(values, settings)
    return (d.contact_due, d.feedback_due, d.followup_due)


def scan_fields(values: dict[str, Any]) -> ScanFields:
    """When each deadline was met, and whether the complaint has none (判定不成立): the columns
    the overdue scan queries (tables.source_rows), computed as ``overdue.scan_record`` reads them."""
    contact, followup = values.get("first_contact_at"), values.get("followup_at")
    return (contact if isinstance(contact, datetime) else None, feedback_given(values),
            followup if isinstance(followup, datetime) else None,
            values.get("validity") == "不成立" or values.get("status") == "不成立")


def prepare_rows(table: ComplaintTable, path: Path, settings: Settings | None = None,
                 shop: str | None = None, dues: Sequence[Deadlines] | None = None, *,
                 consume: bool = False) -> list[PreparedRow]:
    """``dues``: each row's deadlines under ``settings`` when the caller has them.
    ``consume``: the table's rows are let go of as they are encoded (the table ends empty).

    Why a reader child consumes them: orjson reads a text that is not ASCII (a Chinese name,
    a complaint's words) through CPython's UTF-8 copy of it, which the text then keeps for as
    long as it lives. With the rows kept to the end, every copy was held at once: 7 MiB more
    for a shop file of 3,000 complaints, 65 MiB for 30,000 (issue 17). Let go of row by row,
    the next rows reuse the memory."""
    settings = settings or table.settings or DEFAULTS
    shop = shop or file_shop(table, path)
    out: list[PreparedRow] = []
    text = moment_text
    rows: Iterable[SourceRow] = table.rows
    if consume:
        rows, table.rows = drained(table.rows), []
    for i, row in enumerate(rows):
        doc = _stored(row.values)
        key = _anchor(doc)   # before the extras join the stored values
        data = _encoded(doc, row.extras)   # sent and hashed as UTF-8: encoded once
        cid = row.values.get("complaint_id")
        cid = str(cid).strip() if cid and not isinstance(cid, Invalid) else None
        if cid is not None and len(cid) > MAX_ID_CHARS:
            cid = None   # text pasted as an id: kept and matched as a row without one (id_too_long)
        upd = row.values.get("updated_at")
        d = dues[i] if dues is not None else deadlines(row.values, settings)
        scan = scan_fields(row.values)
        out.append((row.row, shop, cid, text(upd) if isinstance(upd, datetime) else None,
                    data, content_hash(data), key,
                    (text(d.contact_due), text(d.feedback_due), text(d.followup_due)), table.sheet,
                    (text(scan[0]), text(scan[1]), text(scan[2]), scan[3])))
    return out


def prepare(table: ComplaintTable | list[ComplaintTable], findings: list[Finding], path: Path,
            dues: Sequence[Sequence[Deadlines]] | None = None, *, consume: bool = False) -> Prepared:
    """One file's tables (a workbook may hold several) ready to store, with its settings;
    ``dues``: each table's rows' deadlines (``validate.table_dues``) when the caller has them;
    ``consume``: the tables' rows are let go of as they are encoded (``prepare_rows``)."""
    tables = table if isinstance(table, list) else [table]
    settings = tables[0].settings or DEFAULTS
    shop = file_shop(tables, path)
    findings = findings + [f for t in tables for f in foreign_shop_findings(t, path, shop)]
    rows = [r for n, t in enumerate(tables)
            for r in prepare_rows(t, path, settings, shop, dues[n] if dues is not None else None, consume=consume)]
    return Prepared(tables[0].sheet, rows, encode_findings(findings), len(findings),
                    shop=shop, settings_json=dcjson.dumps(settings))


def encode_findings(findings: list[Finding]) -> bytes:
    """A file's findings as one JSON array (see tables.file_findings), written as a row's JSON
    is (a file of the bench's dirty data has 1,700 of them), in UTF-8: sent and stored as
    these bytes (``ingest``). As ``str`` the daemon held a big file's findings three times
    over (the text, its UTF-8 copy made to store and to hash it, the database's copy): 5.7
    million characters for 30,000 complaints (issue 17)."""
    return canonical([[f.sheet, f.row, f.cell, f.field, f.severity, f.code, f.message] for f in findings])
