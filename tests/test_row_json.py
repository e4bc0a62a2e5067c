"""A stored row's JSON is written one way (``codec.ROW_JSON``), and a store an older version
wrote is brought to it once, when it is first opened: no complaint reads as changed, no
complaint held in two files shows on 冲突, and nothing about the rows a manager sees moves."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from complaint_core.reader import read_workbook
from complaint_core.store import codec, open_store
from complaint_core.store import tables as t
from complaint_core.store.db import _engine, _received_text
from complaint_core.store.ingest import ingest_table
from complaint_core.store.reencode import MARK, reencode
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

# what versions before ROW_JSON 2 wrote
_FORMAT_1 = json.JSONEncoder(ensure_ascii=False, sort_keys=True)

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), _values, max_size=8))
def test_a_row_is_written_compact_with_sorted_keys_and_reads_back_the_same(doc) -> None:
    data = codec.canonical(doc)
    assert codec.loads(data) == doc
    assert json.loads(data) == doc
    assert data == json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() \
        or any(isinstance(v, float) for v in _leaves(doc))   # orjson's floats: its own shortest text


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


@pytest.mark.parametrize("odd", [2**70, -(2**70), float("nan"), float("inf"), -float("inf")])
def test_a_number_orjson_cannot_write_as_it_is_is_written_by_the_standard_library(odd) -> None:
    doc = {"amount": odd, "_extras": {"备注": odd}, "description": "空调不制冷"}
    data = codec.canonical(doc)
    back = codec.loads(data)
    for got in (back["amount"], back["_extras"]["备注"]):
        assert (math.isnan(got) and math.isnan(odd)) if isinstance(odd, float) and math.isnan(odd) else got == odd
    assert codec.canonical(back) == data   # the same value, the same bytes: the same hash


def test_an_empty_extra_is_null_and_stays_so() -> None:
    doc = {"_extras": {"自定义": None}, "amount": 12.5}
    assert codec.canonical(doc) == b'{"_extras":{"\xe8\x87\xaa\xe5\xae\x9a\xe4\xb9\x89":null},"amount":12.5}'


def test_the_received_time_is_found_in_either_format() -> None:
    doc = {"received_at": "2026-03-02T10:05:00", "description": "x"}
    for data in (codec.canonical(doc).decode(), _FORMAT_1.encode(doc)):
        assert _received_text(data) == "2026-03-02 10:05:00"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


def _ingest(store, path: Path) -> dict[str, int]:
    st_ = path.stat()
    return ingest_table(store, path, read_workbook(path), [], file_hash=str(st_.st_mtime_ns), size=st_.st_size,
                        mtime=st_.st_mtime, now=NOW)


def _older_store(url: str, files: list[Path], monkeypatch) -> list[dict]:
    """``files`` stored as a version before ROW_JSON 2 stored them (its JSON, its hashes, no
    mark); returns the complaints as that version read them."""
    with monkeypatch.context() as m:
        m.setattr(codec, "canonical", lambda doc: _FORMAT_1.encode(doc).encode("utf-8"))
        store = open_store(url)
        for f in files:
            _ingest(store, f)
    before = _snapshot(store)
    with store.begin() as c:
        c.execute(delete(t.chain_rules).where(t.chain_rules.c.name == MARK))
        stored = c.execute(select(t.source_rows.c.data)).scalars().all()
    assert stored and all('": ' in d for d in stored)   # the older format, or the test proves nothing
    store.engine.dispose()
    return before


def _snapshot(store):
    records = sorted(store.current_records(), key=lambda r: r["record_id"])
    return [{k: v for k, v in r.items() if k != "content_hash"} for r in records]


def test_an_older_store_is_rewritten_once_and_nothing_reads_as_changed(tmp_path, store_url, monkeypatch) -> None:
    # one complaint list in two files of one shop (a copy kept on the desktop and the shared one):
    # every complaint is held twice, alike, so none is a conflict
    rows = sample_rows(40, seed=7, now=NOW, shop="SH01")
    a, b = tmp_path / "SH01" / "投诉.xlsx", tmp_path / "SH01" / "投诉-副本.xlsx"
    a.parent.mkdir()
    write_shop_workbook(a, rows)
    write_shop_workbook(b, rows)
    before = _older_store(store_url, [a, b], monkeypatch)
    store = open_store(store_url)   # this version: the rows are rewritten
    with store.engine.connect() as c:
        stored = c.execute(select(t.source_rows.c.data, t.source_rows.c.content_hash, t.source_rows.c.source_path,
                                  t.source_rows.c.record_key)).all()
        current = {(r.source_path, r.record_key): r.content_hash
                   for r in c.execute(select(t.row_versions).where(t.row_versions.c.data == t.CURRENT))}
        versions = c.execute(select(func.count()).select_from(t.row_versions)).scalar()
    assert len(stored) == 80
    assert all('": ' not in d and codec.content_hash(d) == h for d, h, _p, _k in stored)
    assert {(p, k): h for _d, h, p, k in stored} == current   # the version each file holds shows it
    assert _snapshot(store) == before
    assert store.conflict_count() == 0 and store.conflicts() == []

    # the desktop copy is read again, unchanged, while the shared file is not: before the
    # rewrite every one of its complaints read as changed, and each was then a "conflict"
    # between its two files
    assert _ingest(store, b) == {"new": 0, "changed": 0, "deleted": 0, "same": 40}
    assert store.conflict_count() == 0
    with store.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(t.row_versions)).scalar() == versions
    assert reencode(store.engine) == 0   # once only


def test_a_row_that_is_not_json_is_left_and_the_others_are_rewritten(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    f = tmp_path / "SH01" / "a.xlsx"
    f.parent.mkdir()
    write_shop_workbook(f, sample_rows(5, seed=3, now=NOW, shop="SH01"))
    _older_store(url, [f], monkeypatch)
    store = open_store(url)
    with store.begin() as c:   # as if typed into the store by hand, then the store marked older again
        first = c.execute(select(func.min(t.source_rows.c.id))).scalar()
        c.execute(update(t.source_rows).where(t.source_rows.c.id == first).values(data="{not json"))
        c.execute(update(t.source_rows).where(t.source_rows.c.id != first)
                  .values(data='{"description": "x"}', content_hash="old"))
        c.execute(delete(t.chain_rules).where(t.chain_rules.c.name == MARK))
    assert reencode(store.engine) == 4
    with store.engine.connect() as c:
        got = dict(c.execute(select(t.source_rows.c.id, t.source_rows.c.data)).all())
    assert got.pop(first) == "{not json"
    assert set(got.values()) == {'{"description":"x"}'}


def test_two_processes_opening_an_older_store_at_once_rewrite_it_once(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    files = []
    for n in range(3):
        f = tmp_path / f"SH0{n}" / "a.xlsx"
        f.parent.mkdir()
        write_shop_workbook(f, sample_rows(300, seed=n, now=NOW, shop=f"SH0{n}"))
        files.append(f)
    _older_store(url, files, monkeypatch)
    done: list[int] = []
    failed: list[BaseException] = []

    def opener() -> None:   # what open_store does, on an engine of its own
        try:
            done.append(reencode(_engine(url)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failed.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not failed, failed
    assert sorted(done) == [0, 900]   # one rewrote every row; the other found them rewritten
    store = open_store(url)
    with store.engine.connect() as c:
        assert all('": ' not in d for d in c.execute(select(t.source_rows.c.data)).scalars())
        marks = c.execute(select(func.count()).select_from(t.chain_rules).where(t.chain_rules.c.name == MARK)).scalar()
    assert marks == 1
