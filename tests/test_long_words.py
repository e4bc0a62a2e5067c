"""Values PostgreSQL used to refuse never stop a merge or a scan, on SQLite or on PostgreSQL: a
description pasted into 投诉编号, a paragraph as 责任人 (longer than a column allowed), a NUL
character in a cell (an xlsx can hold one as ``_x0000_``), the size of a file past 2 GiB.
SQLite stores all of them; PostgreSQL refused the row, and the whole merge (or scan) with it."""

from __future__ import annotations

import random

import pytest
import xlsxwriter
from sqlalchemy import select, text

from complaint_core.schema import FIELDS, SHEET_COMPLAINTS
from complaint_core.store import open_store
from complaint_core.store import tables as t
from scheduler.api import scan_once
from sync.api import merge_once
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook


def _pasted(n: int, seed: int) -> str:
    # incompressible: PostgreSQL compresses a long repeated key below its index limit
    rng = random.Random(seed)
    return "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(n))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


def _both_merged(tmp_path, store_url, rows, write):
    """SH01's file (``rows``, written by ``write``) and a plain SH02 merged into the store: both
    must be read, neither refused. Returns the two shop folders."""
    a, b = tmp_path / "SH01", tmp_path / "SH02"
    a.mkdir()
    b.mkdir()
    write(a / "a.xlsx", rows)
    write_shop_workbook(b / "b.xlsx", sample_rows(3, seed=2, now=NOW, shop="SH02"))
    report = merge_once([a, b], tmp_path / "merged.xlsx", state_url=store_url, now=NOW)
    assert len(report.read) == 2 and not report.failed, report.failed
    return a, b


def test_a_pasted_id_and_a_long_name_are_kept_and_flagged(tmp_path, store_url):
    rows = sample_rows(3, seed=1, now=NOW, shop="SH01")
    rows[0]["complaint_id"] = _pasted(1500, 1)           # 4,500 bytes: past PostgreSQL's index limit
    rows[1]["responsible_person"] = _pasted(300, 2)      # past the old 128 of penalty_events.person
    rows[2]["complaint_id"] = "SH01-" + _pasted(150, 3)  # just past the bound
    a, b = _both_merged(tmp_path, store_url, rows, write_shop_workbook)
    store = open_store(store_url)
    with store.engine.connect() as c:
        ids = [r.complaint_id for r in c.execute(select(t.source_rows.c.complaint_id, t.source_rows.c.row)
                                                  .where(t.source_rows.c.shop == "SH01").order_by("row"))]
    assert ids[0] is None and ids[2] is None and ids[1] == rows[1]["complaint_id"]   # kept, matched without an id
    # (shop, file, sheet, row, cell, field, severity, code, message)
    found = [f for f in store.findings() if f[7] == "id_too_long"]
    assert sorted(f[3] for f in found) == [2, 4], found
    assert any("1500" in f[8] for f in found), found
    scanned = scan_once(store, now=NOW)
    assert scanned.records == 6
    # saved again unchanged: the rows without an id are the same complaints, nothing new
    again = merge_once([a, b], tmp_path / "merged.xlsx", state_url=store_url, now=NOW)
    assert again.read == [] and not again.failed
    store.engine.dispose()


def test_an_older_postgresql_store_has_its_bounded_columns_widened(pg_url):
    store = open_store(pg_url)
    with store.engine.begin() as c:   # as a version before this one created them
        c.execute(text("ALTER TABLE source_rows ALTER COLUMN complaint_id TYPE varchar(128)"))
        c.execute(text("ALTER TABLE penalty_events ALTER COLUMN person TYPE varchar(128)"))
        c.execute(text("ALTER TABLE sources ALTER COLUMN size TYPE integer"))
    store.engine.dispose()
    store = open_store(pg_url)
    with store.engine.connect() as c:
        kinds = dict(c.execute(text("SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                                    "WHERE column_name IN ('complaint_id', 'person') "
                                    "OR (table_name = 'sources' AND column_name = 'size')")).all())
    store.engine.dispose()
    assert kinds == {"source_rows.complaint_id": "text", "penalty_events.complaint_id": "text",
                     "penalty_events.person": "text", "sources.size": "bigint"}, kinds


def test_a_file_past_the_largest_workbook_is_refused_unread(tmp_path, store_url):
    """A 3 GiB file named like a workbook (sparse here: it takes no disk) is one line on 来源,
    refused from its size before the daemon reads it to hash it; its size fits the store."""
    import time

    shop = tmp_path / "SH01"
    shop.mkdir()
    write_shop_workbook(shop / "a.xlsx", sample_rows(3, seed=1, now=NOW, shop="SH01"))
    with open(shop / "备份.xlsx", "wb") as fh:
        fh.truncate(3 << 30)
    started = time.monotonic()
    report = merge_once([shop], tmp_path / "merged.xlsx", state_url=store_url, now=NOW)
    assert time.monotonic() - started < 30   # hashing 3 GiB alone took longer on a slow hour
    assert [r.path.name for r in report.read] == ["a.xlsx"]
    assert [r.path.name for r in report.failed] == ["备份.xlsx"] and "文件过大（3072 MiB" in report.failed[0].reason
    store = open_store(store_url)
    sizes = {s["path"].rsplit("/", 1)[-1]: s["size"] for s in store.sources()}
    store.engine.dispose()
    assert sizes["备份.xlsx"] == 3 << 30


def _written_as_xlsxwriter_does(path, rows):
    """A shop file with the control characters openpyxl refuses (XlsxWriter writes ``_x0000_``)."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    ws = wb.add_worksheet(SHEET_COMPLAINTS)
    ws.write_row(0, 0, [f.zh for f in FIELDS])
    moment = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for r, row in enumerate(rows, start=1):
        for c, f in enumerate(FIELDS):
            v = row.get(f.key)
            if v is not None:
                ws.write_datetime(r, c, v, moment) if hasattr(v, "hour") else ws.write(r, c, v)
    wb.close()


def test_a_nul_in_a_cell_is_dropped_and_the_rest_merges(tmp_path, store_url):
    rows = sample_rows(3, seed=1, now=NOW, shop="SH01")
    rows[0]["complaint_id"] = "SH01-\x00001"
    rows[1]["responsible_person"] = "张\x00三"
    _both_merged(tmp_path, store_url, rows, _written_as_xlsxwriter_does)
    store = open_store(store_url)
    with store.engine.connect() as c:
        ids = {r.complaint_id for r in c.execute(select(t.source_rows.c.complaint_id))}
    assert "SH01-001" in ids
    assert scan_once(store, now=NOW).records == 6
    people = {r["responsible_person"] for r in store.snapshot()[0]}
    assert "张三" in people
    store.engine.dispose()
