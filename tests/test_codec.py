"""A stored row's JSON and anchor never change for the same values: a store written by one
version is read by the next, and a changed text would make every complaint look edited. The
one change of the JSON's format (``codec.ROW_JSON`` 2) comes with the rewrite of an older
store's rows (store/reencode.py), to the very bytes a fresh write makes."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from complaint_core.deadlines import deadlines
from complaint_core.model import ComplaintTable, Invalid, SourceRow
from complaint_core.schema import FIELDS
from complaint_core.settings import DEFAULTS
from complaint_core.store.codec import (
    ANCHOR_KEYS,
    anchor,
    canonical,
    content_hash,
    encode_values,
    prepare_rows,
)


def _as_first_written(value: Any) -> Any:
    """How the first stored rows encoded a value (kept here as the reference)."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Invalid):
        return str(value.raw)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _json_first_written(values: dict[str, Any], extras: dict[str, Any] | None) -> str:
    plain = {str, int, float, bool}
    doc = {k: v if type(v) in plain else _as_first_written(v) for k, v in values.items() if v is not None}
    if extras:
        doc["_extras"] = {k: v if type(v) in plain else _as_first_written(v) for k, v in extras.items()}
    return json.dumps(doc, ensure_ascii=False, sort_keys=True)


def _anchor_first_written(values: dict[str, Any]) -> str:
    raw = "\x1f".join(str(_as_first_written(values.get(k)) or "").strip() for k in ANCHOR_KEYS)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


_moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1))
_values = st.one_of(
    st.none(), st.text(max_size=12), st.sampled_from(["", " ", "  x ", "0"]), st.integers(-10**20, 10**20),
    st.floats(allow_nan=False), st.booleans(), _moments, _moments.map(lambda d: d.replace(microsecond=0)),
    _moments.map(lambda d: d.replace(tzinfo=timezone(timedelta(hours=8)))), st.dates(), st.times(),
    st.text(max_size=8).map(lambda t: Invalid(t, "bad_datetime")),
    # a zone of any offset, to the microsecond (orjson writes only hours and minutes of one)
    st.builds(lambda d, s: d.replace(tzinfo=timezone(timedelta(seconds=s))), _moments,
              st.sampled_from([0, 19_815, -12_600, 1]) | st.integers(-86_399, 86_399)),
    st.sampled_from(["2026-01-02T03:04:05+08:00", "T12:00:00-", "2026-01-02T03:04:05"]),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(2**63, 2**70),
)
_keys = st.sampled_from([f.key for f in FIELDS] + ["odd_key"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=40), st.none() | st.dictionaries(st.text(max_size=5), _values,
                                                                                  max_size=3))
def test_a_rows_stored_text_is_the_first_written_one_rewritten_and_its_anchor_as_first_written(
        values: dict[str, Any], extras: dict | None) -> None:
    now = encode_values(values, extras)
    first = _json_first_written(values, extras)
    # the same values as the first format held; and the very bytes the rewrite of a store of
    # that format makes of them (store/reencode.py), so a rewritten row never reads as changed
    assert _typed(json.loads(now)) == _typed(json.loads(first))
    assert now == canonical(json.loads(first)).decode()
    if not any(isinstance(v, float) for v in [*values.values(), *(extras or {}).values()]):
        # format 2 (codec.ROW_JSON): sorted keys, no spaces (orjson writes some floats its own way)
        assert now == json.dumps(json.loads(first), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert anchor(values) == _anchor_first_written(values)
    table = ComplaintTable(path=None, sheet="投诉登记", header_row=1, first_col=0, columns={}, extra_columns={},
                           rows=[SourceRow(row=2, values=values, extras=extras or {})])
    row = prepare_rows(table, Path("S1/台账.xlsx"))[0]
    assert row[4].decode() == encode_values(values, extras or None)
    assert row[5] == content_hash(row[4])
    assert row[6] == _anchor_first_written(values)


def test_deadlines_given_are_the_ones_stored() -> None:
    values = {"received_at": datetime(2026, 11, 30, 9, 0), "resolved_at": datetime(2026, 12, 1, 10, 0)}
    table = ComplaintTable(path=None, sheet="投诉登记", header_row=1, first_col=0, columns={}, extra_columns={},
                           rows=[SourceRow(row=2, values=values, extras={})])
    worked_out = prepare_rows(table, Path("S1/台账.xlsx"))[0][7]
    d = deadlines(values, DEFAULTS)
    assert worked_out == tuple(x.isoformat(" ", "microseconds") for x in (d.contact_due, d.feedback_due,
                                                                           d.followup_due))
    given_ = deadlines({"received_at": datetime(2020, 1, 1)}, DEFAULTS)
    assert prepare_rows(table, Path("S1/台账.xlsx"), dues=[given_])[0][7] == (
        given_.contact_due.isoformat(" ", "microseconds"), given_.feedback_due.isoformat(" ", "microseconds"), None)


def _typed(value: Any) -> Any:
    """``value`` with every number's type kept apart (1 and 1.0 are equal in Python), a NaN
    compared as its text: what must come back from the store exactly as it went in."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, repr(value))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**62, max_value=2**70)
    | st.integers(min_value=-(2**70), max_value=-(2**62)) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(_json_values)
def test_stored_json_reads_back_as_json_reads_it(value: Any) -> None:
    """``codec.loads`` (orjson, for speed) gives what ``json.loads`` gives, type for type: a
    big integer is never turned into a float, a NaN or a lone surrogate is still read."""
    from complaint_core.store.codec import loads

    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    assert _typed(loads(text)) == _typed(json.loads(text))


def test_stored_json_edge_numbers_and_texts() -> None:
    from complaint_core.store import codec

    cases = ['{"a": 18446744073709551616}', '{"a": -9223372036854775809}', '[1, {"b": [99999999999999999999]}]',
             '{"a": 9223372036854775807, "b": 18446744073709551615}', '{"a": 1e+19, "b": -0.0}',
             '{"a": NaN, "b": Infinity}', '{"a": "\\ud800"}', '123456789012345678901234567890', '"\u4e2d"']
    for text in cases:
        assert _typed(codec.loads(text)) == _typed(json.loads(text)), text
    assert codec.loads('{"a": 18446744073709551616}')["a"] == 2**64
    assert codec._orjson is not None   # installed with the package: the fast path is what runs


def test_stored_json_without_orjson(monkeypatch: Any) -> None:
    """A machine without orjson's wheel reads the same values through json."""
    from complaint_core.store import codec

    monkeypatch.setattr(codec, "_orjson", None)
    doc = codec.decode_values('{"received_at": "2026-01-02T03:04:05", "amount": 18446744073709551616}')
    assert doc == {"received_at": datetime(2026, 1, 2, 3, 4, 5), "amount": 2**64}


def _shop_rows(n: int) -> ComplaintTable:
    rows = [SourceRow(row=i + 2, values={"complaint_id": f"S1-{i:05d}", "received_at": datetime(2026, 11, 2, 9, i % 60),
                                         "customer_name": f"顾客{i}", "description": "菜里有头发，要求退款并道歉" * 4},
                      extras={"备注二": f"第{i}条"}) for i in range(n)]
    return ComplaintTable(path=None, sheet="投诉登记", header_row=1, first_col=0, columns={}, extra_columns={},
                          rows=rows)


def test_a_consumed_table_gives_the_same_rows_and_ends_empty() -> None:
    # a reader child lets each row go as it is encoded (isolate._work): the rows stored are
    # the very ones a caller that keeps its table gets
    kept, consumed = _shop_rows(50), _shop_rows(50)
    assert prepare_rows(consumed, Path("S1/台账.xlsx"), consume=True) == prepare_rows(kept, Path("S1/台账.xlsx"))
    assert consumed.rows == [] and len(kept.rows) == 50


def test_a_stored_rows_json_takes_its_own_size_in_memory() -> None:
    # orjson's bytes keep the buffer it wrote into (4 KiB at least): a reader child holding a
    # shop's 3,000 rows before sending them held 19 MiB more than their JSON
    import tracemalloc

    doc = {"customer_name": "顾客", "description": "菜里有头发", "amount": 12.5}
    size = len(canonical(doc))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [canonical(doc) for _ in range(200)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(kept) == 200 and held < 200 * (size + 200), held
