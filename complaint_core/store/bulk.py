"""Many rows into one table straight through the database driver.

A first merge of 100 shops stores 200,000 rows (the rows and their first version).
SQLAlchemy's ``insert(table)`` with a list of dicts works out each row's parameters in
Python, which cost the daemon about as much time as the children spent reading the shops'
workbooks. This compiles the INSERT once per table and column list, converts the values
the driver cannot take as they are (datetimes on SQLite) with the dialect's own
converters, and hands plain tuples to ``executemany``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect

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
    convert: list[Converter | None] = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    return sql, convert


def insert_rows(conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> None:
    """``INSERT`` every row of ``rows`` (values in ``columns`` order) in one executemany."""
    if not rows:
        return
    sql, convert = _statement(table, columns, conn.dialect)
    todo = [(i, _remember_last(f)) for i, f in enumerate(convert) if f is not None]
    if todo:
        fixed = []
        for row in rows:
            row = list(row)
            for i, f in todo:
                if row[i] is not None:
                    row[i] = f(row[i])
            fixed.append(tuple(row))
        rows = fixed
    conn.exec_driver_sql(sql, rows if isinstance(rows, list) else list(rows))


def _remember_last(convert: Converter) -> Converter:
    # every row of one file carries the same "seen at" moment: convert it once, not per row
    last: list[Any] = [object(), None]

    def once(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, convert(value)
        return last[1]
    return once
