"""Insert rows whose key is not stored yet, also when another scanner inserts the same keys.

A scan reads the keys it has (penalty event ids, outbox dedupe keys) and inserts the rest. A
second scanner on the same database (`complaint-desk scan` run by a manager while the daemon
scans) may have read the same "not there yet" a moment before. A plain INSERT then waits for the
first scanner's commit and fails with a unique violation (PostgreSQL and SQLite alike), and the
whole second scan is lost. ``INSERT … ON CONFLICT DO NOTHING`` makes that insert skip what the
first one stored, so the two scans together store each penalty and each mail once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Table, insert
from sqlalchemy.engine import Connection


def insert_missing(conn: Connection, table: Table, key: Column[Any], rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping any whose ``key`` (a unique column) is stored; returns how many went in."""
    if not rows:
        return 0
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        stmt = pg_insert(table).on_conflict_do_nothing(index_elements=[key]).returning(key)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        # One statement for one row, run for every row (the driver's executemany): the count of
        # rows really inserted is its rowcount. With RETURNING, SQLAlchemy would write the rows
        # into statements of up to 1,000 rows instead, a new text for every count of rows, and
        # the driver keeps the last 128 statements it compiled: a first scan of 300 shops held
        # 112 MiB of them in the daemon (issue 17).
        each = sqlite_insert(table).on_conflict_do_nothing(index_elements=[key])
        return int(conn.execute(each, rows).rowcount)
    else:   # the store supports SQLite and PostgreSQL only; elsewhere a plain insert
        conn.execute(insert(table), rows)
        return len(rows)
    # RETURNING lists only the rows really inserted: the count the scan reports as new.
    return len(conn.execute(stmt, rows).all())
