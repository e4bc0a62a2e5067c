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


def test_moments_of_every_kind_stored_as_sqlalchemy_stores_them(two_stores: tuple) -> None:
    # the quick path takes naive datetimes only: a zone-aware moment, a date, None and a column
    # holding one moment for every row go the dialect's way, and read back the same
    from datetime import date, timedelta, timezone

    cols = (*COLS, "due_contact", "due_feedback")
    zone = timezone(timedelta(hours=8))
    kinds = [datetime(2026, 3, 1, 8, 0, tzinfo=zone), date(2026, 3, 2), None, datetime(2026, 3, 3, 9, 1, 2, 5),
             datetime(1900, 1, 1)]
    same = datetime(2026, 11, 23, 12, 0)
    rows = [(*r[:-1], same, kinds[i % len(kinds)], None) for i, r in enumerate(_rows(50))]
    got = _stored_as_sqlalchemy_stores(two_stores, cols, rows, rows)
    assert {r[-3] for r in got} == {same}


def _stored_as_sqlalchemy_stores(two_stores: tuple, cols: tuple[str, ...], ours_rows: list[tuple],
                                 their_rows: list[tuple]) -> list[tuple]:
    """``ours_rows`` through ``insert_rows`` into one store, ``their_rows`` through SQLAlchemy's own
    insert into the other: both read back the same, and on SQLite hold the very same text."""
    ours, theirs = two_stores
    with ours.begin() as c:
        insert_rows(c, t.row_versions, cols, ours_rows)
    with theirs.begin() as c:
        c.execute(insert(t.row_versions), [dict(zip(cols, r, strict=True)) for r in their_rows])
    with ours.engine.connect() as a, theirs.engine.connect() as b:
        q = select(*(t.row_versions.c[k] for k in cols)).order_by(t.row_versions.c.record_key)
        got, want = [tuple(r) for r in a.execute(q)], [tuple(r) for r in b.execute(q)]
        assert got == want
        if ours.engine.dialect.name == "sqlite":
            moments = ", ".join(k for k in cols if k == "seen_at" or k.startswith("due_"))
            raw = f"SELECT {moments} FROM row_versions ORDER BY record_key"
            assert a.exec_driver_sql(raw).all() == b.exec_driver_sql(raw).all()
    for s in two_stores:
        s.engine.dispose()
    return got


def test_moments_sent_as_the_stores_text_are_stored_as_the_datetimes_would_be(two_stores: tuple) -> None:
    # the reader children send moments as text (codec.moment_text): stored on SQLite as it comes,
    # read as a datetime for another database; other text is read as a moment first. Either way
    # the store holds what SQLAlchemy's own insert of the datetimes holds.
    from datetime import timedelta, timezone

    from complaint_core.store.codec import moment_text

    cols = (*COLS, "due_contact", "due_feedback", "due_followup")
    zone = timezone(timedelta(hours=8))
    moments = [datetime(2026, 3, 3, 9, 1, 2, 5), datetime(999, 1, 2), None, datetime(2026, 3, 1, 8, tzinfo=zone),
               datetime(2026, 12, 31, 23, 59, 59)]
    rows = [(*r, moments[i % 5], moments[(i + 1) % 5], moments[(i + 2) % 5]) for i, r in enumerate(_rows(40))]
    sent = [(*r[:8], moment_text(r[8]), moment_text(r[9]), moment_text(r[10]),
             r[11].isoformat() if isinstance(r[11], datetime) else r[11]) for r in rows]   # T-separated
    assert any(isinstance(v, str) and v[10] == " " for r in sent for v in r[9:11])
    _stored_as_sqlalchemy_stores(two_stores, cols, sent, rows)


def test_a_rows_json_sent_as_bytes_is_stored_as_its_text(tmp_path: Path) -> None:
    # the reader's children send each row's JSON as UTF-8 bytes; on SQLite it goes in as it
    # is (CAST ... AS TEXT), and must read back as the same text, never as a blob
    from complaint_core.store.bulk import text_as_bytes

    store = open_store(tmp_path / "s.sqlite")
    rows = _rows(6)
    with store.begin() as c:
        assert text_as_bytes(c.dialect)
        insert_rows(c, t.row_versions, COLS, [(*r[:6], r[6].encode(), *r[7:]) for r in rows])
    with store.engine.connect() as c:
        kinds = c.exec_driver_sql("SELECT DISTINCT typeof(data) FROM row_versions").scalars().all()
    assert kinds == ["text"]
    reference = open_store(tmp_path / "ref.sqlite")
    with reference.begin() as c:
        c.execute(insert(t.row_versions), [dict(zip(COLS, r, strict=True)) for r in rows])
    assert _stored(store) == _stored(reference)


def _pragma(store: object, name: str) -> object:
    with store.engine.connect() as c:   # type: ignore[attr-defined]
        return c.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_a_new_store_has_pages_for_rows_of_a_kilobyte_and_more(tmp_path: Path) -> None:
    store = open_store(tmp_path / "new.sqlite")
    assert (_pragma(store, "page_size"), _pragma(store, "journal_mode")) == (16384, "wal")


def test_a_store_made_with_other_pages_keeps_them_and_its_rows(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)   # as a store made before the page size was chosen
    old.execute("PRAGMA page_size=4096")
    old.execute("PRAGMA journal_mode=WAL")
    old.close()
    store = open_store(path)
    with store.begin() as c:
        insert_rows(c, t.row_versions, COLS, _rows(300))
    store.engine.dispose()
    again = open_store(path)
    assert _pragma(again, "page_size") == 4096
    assert len(_stored(again)) == 300 and _stored(again)[0][3] == "S0\x1fC0"


def test_columns_of_look_alike_texts_and_mixed_flags_store_what_sqlalchemy_would(two_stores: tuple) -> None:
    # columns that look like the store's own moment texts but are not (a 26-character text with
    # a "T", a stray shorter text), a flag column holding True and 1, and a column holding one
    # moment for every row: stored as SQLAlchemy stores the values they stand for
    from complaint_core.store.codec import moment_text

    cols = (*COLS, "due_contact", "due_feedback", "due_followup")
    base = datetime(2026, 3, 3, 9, 1, 2)
    moments = [base.replace(minute=i % 60, microsecond=i) for i in range(60)]
    texts = [moment_text(m) for m in moments]
    odd = list(texts)
    odd[7] = moments[7].isoformat(timespec="microseconds")            # 26 characters, "T" at 10
    odd[9] = "2026-03-03 09:01"                                       # read as a moment first
    flags = [i % 3 == 0 for i in range(60)]
    mixed = [1 if i == 5 else f for i, f in enumerate(flags)]          # True and 1 in one column
    rows = _rows(60)
    ours = [(*r[:7], mixed[i], r[8], texts[i] if i % 4 else None, odd[i], texts[0]) for i, r in enumerate(rows)]
    theirs = [(*r[:7], bool(mixed[i]), r[8], moments[i] if i % 4 else None,
               datetime.fromisoformat(odd[i]), moments[0]) for i, r in enumerate(rows)]
    got = _stored_as_sqlalchemy_stores(two_stores, cols, ours, theirs)
    assert sum(r[7] for r in got) == sum(map(bool, mixed))
    by_key = {r[3]: r for r in got}
    assert by_key[rows[9][3]][-2] == datetime(2026, 3, 3, 9, 1) and by_key[rows[7][3]][-2] == moments[7]
