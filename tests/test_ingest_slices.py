"""A big file's rows reach the daemon as pickled slices and are stored a slice at a time
(issue 17): the store ends up exactly as when the rows come as one list, through re-sorts, ids
typed in, descriptions corrected in place and rows deleted."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from complaint_core import isolate
from complaint_core.reader import read_workbook
from complaint_core.store import db, ingest, open_store
from complaint_core.store import tables as t
from complaint_core.store.codec import content_hash, prepare
from complaint_core.store.ingest import ingest_prepared
from complaint_core.validate import validate_table
from tests.support.pipe import through_the_pipe
from tests.support.workbooks import NOW, inject_defects, sample_rows, write_shop_workbook


def _versions(n: int) -> list[list[dict[str, Any]]]:
    first = sample_rows(n, seed=11, now=NOW)
    for r in first[::7]:
        r["complaint_id"] = None                     # rows without an id, keyed by their anchor
    second = [dict(r) for r in first]
    for i, r in enumerate(second[:40:7]):
        r["complaint_id"] = f"NEW-{i}"               # an id typed in, in place
    for r in second[70:140:7]:
        r["description"] = r["description"] + "（已更正）"        # corrected in place, no id
    for r in second[200:260]:
        r["description"] = r["description"] + "！"                # corrected, with an id
    third = list(reversed([r for i, r in enumerate(second) if i % 50 != 3]))   # re-sorted, some deleted
    return [first, second, third]


def _stored(url: Path) -> tuple[list[Any], ...]:
    store = open_store(url)
    try:
        with store.engine.connect() as c:
            rows = c.execute(select(t.source_rows.c.record_key, t.source_rows.c.sheet, t.source_rows.c.row,
                                    t.source_rows.c.content_hash, t.source_rows.c.version, t.source_rows.c.deleted,
                                    t.source_rows.c.anchor, t.source_rows.c.data)
                             .order_by(t.source_rows.c.record_key)).all()
            versions = c.execute(select(t.row_versions.c.record_key, t.row_versions.c.version,
                                        t.row_versions.c.content_hash, t.row_versions.c.data,
                                        t.row_versions.c.deleted)
                                 .order_by(t.row_versions.c.record_key, t.row_versions.c.version)).all()
            aliases = c.execute(select(t.record_aliases.c.old_ref, t.record_aliases.c.new_ref)
                                .order_by(t.record_aliases.c.old_ref)).all()
            return [tuple(r) for r in rows], [tuple(r) for r in versions], [tuple(r) for r in aliases]
    finally:
        store.engine.dispose()


@pytest.mark.parametrize("in_memory", [4 << 20, 50_000], ids=["spool-in-memory", "spool-on-disk"])
def test_a_file_stored_a_slice_at_a_time_is_stored_as_from_one_list(tmp_path: Path, monkeypatch, in_memory: int) -> None:
    monkeypatch.setattr(isolate, "_IN_MEMORY", in_memory)
    shop = tmp_path / "SH01" / "S.xlsx"
    shop.parent.mkdir()
    stores = {"list": tmp_path / "list.db", "slices": tmp_path / "slices.db"}
    counts: dict[str, list[dict[str, int]]] = {k: [] for k in stores}
    for n, rows in enumerate(_versions(1300)):
        write_shop_workbook(shop, rows)
        table = read_workbook(shop)
        prepared = prepare(table, validate_table(table, now=NOW), shop)
        now = NOW + timedelta(minutes=n)
        for how, url in stores.items():
            got = through_the_pipe(prepared).open() if how == "slices" else prepared
            assert isinstance(got.rows, isolate.PackedRows) == (how == "slices")
            store = open_store(url)
            try:
                counts[how].append(ingest_prepared(store, shop, got, file_hash=f"h{n}", size=n, mtime=n, now=now))
            finally:
                store.engine.dispose()
                if isinstance(got.rows, isolate.PackedRows):
                    got.rows.close()
    assert counts["list"] == counts["slices"]
    # 6 ids typed in and 10 descriptions corrected without an id (both continued), 60 with one
    assert counts["list"][1]["changed"] == 76 and counts["list"][2]["deleted"] == 26
    listed, sliced = _stored(stores["list"]), _stored(stores["slices"])
    assert listed == sliced
    assert len(listed[2]) == 25   # the keys that changed were continued, not made anew


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_stored_files_findings_are_its_text_and_let_go_of_once_stored(tmp_path: Path, kind: str,
                                                                        request: pytest.FixtureRequest,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A file's findings come as UTF-8 bytes and are stored as their text; the daemon stores a
    hundred files in one life: what it keeps of one after storing it (SQLAlchemy kept the first
    file's findings text inside a statement it reuses, 5.7 MB for 30,000 complaints) stays for
    every merge after."""
    import gc
    import sys

    shop = tmp_path / "SH01" / "S.xlsx"
    shop.parent.mkdir()
    rows = sample_rows(40, seed=3, now=NOW)
    inject_defects(rows, now=NOW)
    write_shop_workbook(shop, rows)
    table = read_workbook(shop)
    prepared = prepare(table, validate_table(table, now=NOW), shop)
    text = prepared.findings_json
    assert prepared.findings > 0
    assert isinstance(text, bytes) and "投诉".encode() in text   # Chinese words in UTF-8
    if kind == "sqlite":
        store = open_store(tmp_path / "s.db")
    else:
        from tests.support.pg import new_database

        store = open_store(new_database(request.getfixturevalue("pg_server")))
    try:
        for n in range(2):   # the second store of the file reuses the first's statement
            held = sys.getrefcount(text)
            ingest_prepared(store, shop, prepared, file_hash=f"h{n}", size=n, mtime=n, now=NOW + timedelta(minutes=n))
            gc.collect()
            assert sys.getrefcount(text) == held
            got = store.finding_file(str(shop))
            assert got is not None and got[1] == text and got[2] == content_hash(text)
            assert [tuple(f) for f in json.loads(got[1])] == [
                (f.sheet, f.row, f.cell, f.field, f.severity, f.code, f.message) for f in validate_table(table, now=NOW)]
            # a piece at a time (SQLite's blob handle: in pieces; PostgreSQL: its text at once)
            monkeypatch.setattr(db, "_PIECE", 1000)
            with store.engine.connect() as c:
                streamed = store.finding_pieces(str(shop), c)
                assert streamed is not None
                read = list(streamed[3])
                assert streamed[:3] == (got[0], got[2], len(text)) and b"".join(read) == text
                assert len(read) == (-(-len(text) // 1000) if kind == "sqlite" else 1)
                assert store.finding_pieces("nothing here", c) is None
                begun = store.finding_pieces(str(shop), c)   # a reader that stops half-way closes its pieces
                assert begun is not None and next(begun[3]) == text[:1000]
                begun[3].close()
            monkeypatch.undo()
        # a big file's findings, as they waited in a temporary file (isolate.Packed), go into
        # their row a piece at a time (SQLite's blob handle), the same text; nothing of them
        # stays bound to a statement SQLite keeps for the next file
        monkeypatch.setattr(ingest, "_FINDINGS_APART", 0)
        monkeypatch.setattr(isolate, "_FINDINGS_PIECE", 100)
        monkeypatch.setattr(isolate, "_SLICE", 10)   # sent in slices, as a big file's rows are
        waiting = through_the_pipe(prepared).open()
        assert not isinstance(waiting.findings_json, bytes) and len(waiting.findings_json) == len(text)
        try:
            ingest_prepared(store, shop, waiting, file_hash="h3", size=3, mtime=3, now=NOW + timedelta(minutes=3))
        finally:
            assert isinstance(waiting.rows, isolate.PackedRows)
            waiting.rows.close()   # its findings' file with it
        got = store.finding_file(str(shop))
        assert got is not None and got[1] == text and got[2] == content_hash(text)
        with store.engine.connect() as c:
            assert c.execute(select(func.count()).select_from(t.file_findings)).scalar() == 1
            if kind == "sqlite":
                assert c.execute(select(func.typeof(t.file_findings.c.data))).scalar() == "text"
    finally:
        store.engine.dispose()
