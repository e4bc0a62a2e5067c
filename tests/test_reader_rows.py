"""The reader's inlined shortcuts agree with the full normaliser, cell for cell.

``reader._Plan`` settles the common cells inline (text as typed, a dropdown choice, a real
date) for speed; every other cell goes through ``values.normalise``. Here any grid of the
kinds of cell python-calamine and xlwings hand over is read both ways and must match.
"""

from datetime import date, datetime, time

from hypothesis import given, settings
from hypothesis import strategies as st

from complaint_core.model import SourceRow
from complaint_core.reader import find_header, table_from_grid
from complaint_core.schema import FIELDS
from complaint_core.values import normalise

HEADER = [f.zh for f in FIELDS]
CHOICES = sorted({c for f in FIELDS for c in f.choices})

cell = st.one_of(
    st.none(), st.just(""), st.sampled_from([" ", "\u3000", " \t", "\xa0"]),
    st.sampled_from(CHOICES), st.sampled_from([c + " " for c in CHOICES[:5]]),
    st.text(max_size=12), st.sampled_from(["2026/11/19 14:30", "２０２６年１１月１９日", "¥1,200元"]),
    st.booleans(), st.integers(-5, 200_000), st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(2100, 1, 1)),
    st.dates(min_value=date(1900, 3, 1), max_value=date(2100, 1, 1)), st.times(),
    # 9999-12-31 typed for "never", a year typed as 0026: typos either way, never a date
    st.datetimes(), st.sampled_from([datetime(9999, 12, 31, 23, 59), datetime(26, 11, 19), "0026-11-19 10:00"]),
    st.sampled_from(["A\x00B", "\x00", " 张\x00三 "]),   # an xlsx can hold a NUL (_x0000_)
)


_TEXT = {f.key for f in FIELDS if f.type == "text"}


def _blank(v, key=None):
    # a text field's NUL is dropped as it is read (``values.no_nul``): a cell of only NULs is empty
    if key in _TEXT and isinstance(v, str):
        v = v.replace("\x00", "")
    return v is None or (isinstance(v, str) and not v.strip())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(cell, min_size=len(HEADER), max_size=len(HEADER) + 2), min_size=1, max_size=6),
       st.booleans())
def test_every_cell_reads_as_the_normaliser_says(data, date1904):
    grid = [HEADER + ["自备列1", "自备列2"]] + data
    table = table_from_grid(grid, sheet="投诉登记", date1904=date1904)
    by_row = {r.row: r for r in table.rows}
    for i, line in enumerate(data, start=2):
        cells = dict(zip([f.key for f in FIELDS], line, strict=False))
        keys = [f.key for f in FIELDS] + [None] * (len(line) - len(FIELDS))
        if all(_blank(v, k) for k, v in zip(keys, line, strict=True)):
            assert i not in by_row          # a blank row is a gap, not a complaint
            continue
        row = by_row[i]
        for key, v in cells.items():
            expected = None if _blank(v, key) else normalise(key, v, date1904=date1904)
            assert row.values[key] == expected, (key, v)
            assert type(row.values[key]) is type(expected), (key, v)
            assert row.typed(key) == (None if _blank(v) else v)
        assert row.raw == {k: v for k, v in cells.items() if not _blank(v)}
        extras = dict(zip(["自备列1", "自备列2"], line[len(HEADER):], strict=False))
        assert row.extras == {h: v for h, v in extras.items() if not _blank(v)}
        assert list(row.values) == [f.key for f in FIELDS]   # in the sheet's column order


def test_ragged_rows_read_as_empty_cells():
    grid = [HEADER, ["C-1", "S001"], ["C-2"] + [None] * (len(HEADER) + 3)]
    table = table_from_grid(grid, sheet="投诉登记")
    assert [r.values["complaint_id"] for r in table.rows] == ["C-1", "C-2"]
    assert table.rows[0].values["shop"] == "S001" and table.rows[0].values["notes"] is None
    assert table.rows[0].raw == {"complaint_id": "C-1", "shop": "S001"}


def test_typed_cell_is_none_for_a_blank_or_missing_column():
    row = SourceRow(row=2, values={}, cells=("x", " ", time(9)), cell_index={"a": 0, "b": 1, "c": 2})
    assert (row.typed("a"), row.typed("b"), row.typed("c"), row.typed("zzz")) == ("x", None, time(9), None)
    assert row.raw == {"a": "x", "c": time(9)}


def test_a_later_row_that_matches_more_headers_wins():
    # A title row that happens to name four fields, then the real header below it.
    title = ["投诉编号", "受理时间", "客户姓名", "投诉内容", "说明"]
    grid = [title + [""] * 4, HEADER[:9], ["C-1"] + [""] * 8]
    row, keys, _ = find_header(grid)
    assert row == 1 and len(keys) == 9
    # ...and a data row under a full header is never taken for a header.
    grid = [HEADER, HEADER[:]]
    assert find_header(grid)[0] == 0



def test_a_date_outside_1900_to_2200_is_a_typo_and_the_file_is_read(tmp_path):
    """One cell of 9999-12-31 (or of year 1) made a deadline overflow Python's calendar, and the
    daemon refused the whole shop file for it. The cell is now bad_datetime, the rest read."""
    from complaint_core.isolate import _work
    from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

    rows = sample_rows(3, seed=1, now=NOW, shop="SH01")
    rows[0]["received_at"] = datetime(9999, 12, 31, 23, 0)
    rows[1]["resolved_at"] = datetime(9999, 12, 31, 23, 59)
    rows[2]["received_at"] = datetime(1, 1, 1)
    path = write_shop_workbook(tmp_path / "a.xlsx", rows)
    answer = _work(str(path), 2048, NOW)
    assert answer[0] == "ok", answer
    prepared = answer[1]
    assert len(prepared.rows) == 3
    assert prepared.findings_json.count(b'"bad_datetime"') == 3, prepared.findings_json
