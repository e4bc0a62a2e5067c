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
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Table
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
    sql = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
           f"({', '.join(quote(c) for c in columns)}) VALUES ({', '.join([mark] * len(columns))})")
    convert: list[Converter | None] = [_converter(table.c[c].type, dialect) for c in columns]
    return sql, convert


def _converter(kind: Any, dialect: Dialect) -> Converter | None:
    bind = kind.dialect_impl(dialect).bind_processor(dialect)
    quick = _quick(bind)
    if quick is not None and getattr(quick, "takes_text", False):
        return quick
    if isinstance(kind, DateTime):
        # a moment may come as the store's text (``codec.moment_text``): this driver gets a datetime
        def moment(value: Any, then: Converter | None = quick) -> Any:
            value = as_moment(value)
            return value if then is None else then(value)
        return moment
    return quick


def as_moment(value: Any) -> Any:
    """``codec.moment_text``'s text back as a datetime (for SQLAlchemy's own statements)."""
    return datetime.fromisoformat(value) if value.__class__ is str else value


# What SQLite's DateTime stores a naive datetime as, by SQLAlchemy's own processor; checked
# against it before use, on moments with and without a fraction of a second.
_SAMPLES = (datetime(2026, 1, 2, 3, 4, 5), datetime(2026, 12, 31, 23, 59, 59, 123456), datetime(1900, 1, 1))


def _quick(convert: Converter | None) -> Converter | None:
    """The dialect's converter, or, where it writes a naive datetime exactly as
    ``isoformat(" ", "microseconds")`` does (SQLite's DateTime), one that calls that C method
    for naive datetimes, stores ``codec.moment_text``'s text as it is, and calls the dialect's
    converter for anything else: a first merge of 100 shops stores 800,000 moments."""
    if convert is None:
        return None
    try:
        same = all(convert(d) == ISO_TEXT(d) for d in _SAMPLES)
    except Exception:  # noqa: BLE001 - not a datetime converter
        same = False
    slow = convert
    if not same:
        def plain(value: Any) -> Any:
            return None if value is None else slow(value)
        return plain

    def quick(value: Any) -> Any:
        cls = value.__class__
        if cls is datetime and value.tzinfo is None:
            return ISO_TEXT(value)
        if cls is str:
            if len(value) == 26 and value[10] == " ":
                return value   # ``moment_text``'s: stored as it is
            value = datetime.fromisoformat(value)   # any other text is read as a moment first
            if value.tzinfo is None:
                return ISO_TEXT(value)
        return None if value is None else slow(value)
    quick.takes_text = True   # type: ignore[attr-defined]
    return quick


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
