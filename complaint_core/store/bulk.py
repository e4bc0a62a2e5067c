"""Many rows into one table straight through the database driver.

A first merge of 100 shops stores 200,000 rows (the rows and their first version).
SQLAlchemy's ``insert(table)`` with a list of dicts works out each row's parameters in
Python, which cost the daemon about as much time as the children spent reading the shops'
workbooks. This compiles the INSERT once per table and column list, converts the values
the driver cannot take as they are (datetimes on SQLite) with the dialect's own
converters (or a C method that is checked to write the same), and hands plain tuples to
``executemany``.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Table, Text
from sqlalchemy.engine import Connection, Dialect

from .codec import ISO_TEXT

# a column type's bind processor: a Python value in, what the DB-API driver takes out
Converter = Callable[[Any], Any]

_MARK = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@functools.lru_cache(maxsize=64)
def _statement(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, list[Converter | None]]:
    quote = dialect.identifier_preparer.quote
    mark = _MARK.get(dialect.paramstyle)
    if mark is None:   # numeric and named styles: none of the drivers we support use them
        raise ValueError(f"unsupported DB-API paramstyle {dialect.paramstyle!r}")
    # SQLite takes a text column's value as UTF-8 bytes too (``text_as_bytes``): the JSON of a
    # row comes from the reader's child as bytes, and decoding it only for the driver to encode
    # it again cost the daemon 4 µs a row (storing 100 shops x 1,000: 2.8 CPU-s, 2.4 without).
    # CAST stores the bytes as the very text.
    marks = [f"CAST({mark} AS TEXT)" if text_as_bytes(dialect) and isinstance(table.c[c].type, Text) else mark
             for c in columns]
    sql = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
           f"({', '.join(quote(c) for c in columns)}) VALUES ({', '.join(marks)})")
    convert: list[Converter | None] = [_converter(table.c[c].type, dialect) for c in columns]
    return sql, convert


def text_as_bytes(dialect: Dialect) -> bool:
    """Whether ``insert_rows`` takes a text column's value as UTF-8 bytes (SQLite)."""
    return dialect.name == "sqlite"


def blob_handle(conn: Connection) -> Callable[..., Any] | None:
    """sqlite3's ``blobopen`` of the connection's own database (Python 3.11 and later), which
    reads or writes a stored value a piece at a time; None for another database or driver."""
    if conn.dialect.name != "sqlite":
        return None
    raw = conn.connection.driver_connection
    opener = getattr(raw, "blobopen", None)
    return opener if isinstance(raw, sqlite3.Connection) and callable(opener) else None


def _converter(kind: Any, dialect: Dialect) -> Converter | None:
    """What a column's values go through before the driver takes them (None: nothing)."""
    convert = kind.dialect_impl(dialect).bind_processor(dialect)
    if convert is not None and _writes_iso(convert):
        return _iso_moment(convert)
    if isinstance(kind, DateTime):
        return _moment(convert)
    return None if convert is None else _or_null(convert)


def as_moment(value: Any) -> Any:
    """``codec.moment_text``'s text back as a datetime (for SQLAlchemy's own statements)."""
    return datetime.fromisoformat(value) if value.__class__ is str else value


# What SQLite's DateTime stores a naive datetime as, by SQLAlchemy's own processor; checked
# against it before use, on moments with and without a fraction of a second.
_SAMPLES = (datetime(2026, 1, 2, 3, 4, 5), datetime(2026, 12, 31, 23, 59, 59, 123456), datetime(1900, 1, 1))


def _writes_iso(convert: Converter) -> bool:
    """Whether ``convert`` writes a naive datetime exactly as ``codec.ISO_TEXT`` does."""
    try:
        return all(convert(d) == ISO_TEXT(d) for d in _SAMPLES)
    except Exception:  # noqa: BLE001 - not a datetime converter
        return False


def _or_null(convert: Converter) -> Converter:
    def call(value: Any) -> Any:
        return None if value is None else convert(value)
    return call


def _moment(convert: Converter | None) -> Converter:
    """A moment for a driver that takes datetimes: ``codec.moment_text``'s text read back."""
    def call(value: Any) -> Any:
        value = as_moment(value)
        return value if convert is None or value is None else convert(value)
    return call


def _iso_moment(convert: Converter) -> Converter:
    """SQLite's DateTime: the C method for naive datetimes, ``codec.moment_text``'s text stored
    as it is (the very text the method writes), the dialect's converter for anything else: a
    first merge of 100 shops stores 800,000 moments."""
    def call(value: Any) -> Any:
        cls = value.__class__
        if cls is datetime and value.tzinfo is None:
            return ISO_TEXT(value)
        if cls is str:
            if len(value) == 26 and value[10] == " ":
                return value
            value = datetime.fromisoformat(value)   # other text is read as a moment first
            if value.tzinfo is None:
                return ISO_TEXT(value)
        return None if value is None else convert(value)
    return call


def insert_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> None:
    """``INSERT`` every row of ``rows`` (values in ``columns`` order) in one executemany."""
    if not rows:
        return
    sql, convert = _statement(table, columns, conn.dialect)
    if any(f is not None for f in convert):
        # a column at a time: C-level transposition, and a column holding one moment for every
        # row (when the file was read) is converted once
        cols = list(zip(*rows, strict=True))
        for i, f in enumerate(convert):
            if f is None:
                continue
            col = cols[i]
            first = col[0]
            if col.count(first) == len(col):
                cols[i] = (None if first is None else f(first),) * len(col)
            else:   # each converter passes None on (NULL) without calling the dialect's
                cols[i] = tuple(map(f, col))
        rows = list(zip(*cols, strict=True))
    conn.exec_driver_sql(sql, rows if isinstance(rows, list) else list(rows))
