"""``insert_missing`` on SQLite: the count of rows really inserted, and one statement text
whatever the number of rows. The driver keeps the last 128 statements it compiled; with
RETURNING, SQLAlchemy wrote the rows into statements of up to 1,000 rows, a new text for every
count of rows, and a first scan of 300 shops kept 112 MiB of them in the daemon (issue 17)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, event, select

from scheduler.idempotent import insert_missing


def test_the_rows_inserted_are_counted_and_one_statement_serves_every_count(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    meta = MetaData()
    table = Table("events", meta, Column("id", Integer, primary_key=True), Column("key", String, unique=True),
                  Column("amount", Integer))
    meta.create_all(engine)
    texts: set[str] = set()

    @event.listens_for(engine, "before_cursor_execute")
    def seen(_conn, _cursor, statement, _params, _context, _many) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            texts.add(statement)

    inserted = 0
    with engine.begin() as conn:
        for n in range(1, 40):   # batches of 1..39 rows, each half new and half stored before
            rows = [{"key": f"k{i}", "amount": i} for i in range(n * n // 2, n * n // 2 + n)]
            have = set(conn.execute(select(table.c.key)).scalars())
            got = insert_missing(conn, table, table.c.key, rows)
            assert got == len({r["key"] for r in rows} - have)
            inserted += got
        stored = conn.execute(select(table.c.key)).scalars().all()
    assert inserted == len(stored) == len(set(stored))
    assert len(texts) == 1, sorted(texts)
