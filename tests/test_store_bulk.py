"""Rows stored through the driver read back exactly as SQLAlchemy's own insert stores them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from complaint_core.store import open_store
from complaint_core.store import tables as t
from complaint_core.store.bulk import insert_rows

COLS = ("source_path", "sheet", "row", "record_key", "version", "content_hash", "data", "deleted", "seen_at")


def _rows(n: int) -> list[tuple]:
    seen = datetime(2026, 10, 1, 9, 30, 15, 250000)
    return [(f"/shops/S{i % 3}/台账.xlsx", "投诉登记", i + 2, f"S{i % 3}\x1fC{i}", 1 + i % 2, f"h{i}",
             '{"description": "顾客说 \\"=1+1\\""}', i % 5 == 0, seen if i % 2 else datetime(2026, 1, 2))
            for i in range(n)]


def _stored(store: object) -> list[tuple]:
    with store.engine.connect() as c:   # type: ignore[attr-defined]
        q = select(*(t.row_versions.c[k] for k in COLS)).order_by(t.row_versions.c.record_key)
        return [tuple(r) for r in c.execute(q)]


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[object, object]:
    if request.param == "sqlite":
        return open_store(tmp_path / "a.sqlite"), open_store(tmp_path / "b.sqlite")
    from tests.support.pg import new_database

    server = request.getfixturevalue("pg_server")
    return open_store(new_database(server)), open_store(new_database(server))


def test_same_values_as_sqlalchemy_insert(two_stores: tuple) -> None:
    ours, theirs = two_stores
    rows = _rows(500)
    with ours.begin() as c:
        insert_rows(c, t.row_versions, COLS, rows)
    with theirs.begin() as c:
        c.execute(insert(t.row_versions), [dict(zip(COLS, r, strict=True)) for r in rows])
    got = _stored(ours)
    assert got == _stored(theirs)
    assert len(got) == 500 and got[0][-1] == datetime(2026, 1, 2) and isinstance(got[0][-2], bool)
    for s in two_stores:
        s.engine.dispose()


def test_nothing_to_insert_is_no_statement(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite")
    with store.begin() as c:
        insert_rows(c, t.row_versions, COLS, [])
    assert _stored(store) == []


def test_a_failed_insert_leaves_nothing(tmp_path: Path) -> None:
    # NOT NULL violated on the last row: the transaction rolls back every row before it
    store = open_store(tmp_path / "s.sqlite")
    rows = _rows(10)
    rows[-1] = (*rows[-1][:-1], None)
    with pytest.raises(Exception, match="NOT NULL"), store.begin() as c:
        insert_rows(c, t.row_versions, COLS, rows)
    assert _stored(store) == []
