"""A manager's save read back without a dict per complaint (merged/editscan.py, issue 17).

Every case compares ``changed_cells`` with the whole read it replaces (``read_manager_edits``
then ``rebase``) on a real merged workbook, saved by openpyxl as a manager's Excel would leave
it (numbered cells, inline strings), then laid out as Excel saves (``bench/excel_save.py``:
every text a shared string), or copied as this program wrote it. Each case also runs with no
cell kept aside (``SIDE_ROWS = 0``), so the rows to compare are read from the file again.
"""

from __future__ import annotations

import shutil
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

import scheduler.api  # noqa: F401  (registers the scheduler tables before the store opens)
from bench.excel_save import excel_save
from complaint_core.merged import editscan
from complaint_core.merged.editscan import changed_cells
from complaint_core.merged.readback import read_manager_edits, rebase
from complaint_core.merged.render import read_back, render_merged
from complaint_core.merged.report import penalty_frame
from complaint_core.merged.sheets import all_sheet
from complaint_core.store import open_store
from complaint_core.store import tables as t
from complaint_core.store.db import content_hash, encode_values, record_key
from scheduler.api import scan_once
from tests.test_colread import _rewritten
from tests.test_mail_outbox import RULES

NOW = datetime(2026, 3, 8, 11, 0)
SHEETS = [all_sheet(), penalty_frame([])]


def _fill(store, n: int = 8) -> None:
    """``n`` complaints of shop A, late for contact (so 处罚 has lines); every other one with
    the shop's own 主管批示, which ``_rendered`` records as written."""
    with store.begin() as c:
        for i in range(n):
            values = {"complaint_id": f"A-{i}", "shop": "A", "received_at": datetime(2026, 3, 2, 10, i),
                      "responsible_person": "张三", "responsible_dept": "门店", "validity": "成立"}
            if i % 2:
                values["manager_approval"] = f"店长已阅 {i}"
            data = encode_values(values)
            c.execute(insert(t.source_rows).values(
                source_path="/shops/A.xlsx", sheet="投诉登记", row=i + 2, shop="A", complaint_id=f"A-{i}",
                record_key=record_key("A", f"A-{i}", "", 0), content_hash=content_hash(data), data=data,
                version=1, first_seen=NOW, last_seen=NOW, deleted=False))


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """The merged workbook as the store wrote it."""
    tmp = tmp_path_factory.mktemp("editscan")
    store = open_store(f"sqlite:///{tmp / 'state.db'}")
    _fill(store)
    scan_once(store, now=NOW, rules=RULES)
    out = tmp / "汇总.xlsx"
    render_merged(store, out, now=NOW)
    return out


def _reference(path: Path, since) -> dict:
    back = read_manager_edits(path, SHEETS)
    rebase(back, since)
    return back.edits


def _header(ws, name: str) -> tuple[int, dict[str, int]]:
    for row in ws.iter_rows(max_row=5):
        heads = {str(c.value): c.column for c in row if c.value is not None}
        if name in heads:
            return row[0].row, heads
    raise AssertionError(name)


def _rows(ws, name: str) -> tuple[dict[str, int], list[int]]:
    h, heads = _header(ws, name)
    rows = [r[0].row for r in ws.iter_rows(min_row=h + 1) if any(c.value not in (None, "") for c in r)]
    return heads, rows


def _approve(wb, index: int, value) -> None:
    ws = wb["全部投诉"]
    heads, rows = _rows(ws, "主管批示")
    ws.cell(rows[index], heads["主管批示"]).value = value


def _confirm(wb, index: int, value) -> None:
    ws = wb["处罚"]
    heads, rows = _rows(ws, "处罚确认")
    ws.cell(rows[index], heads["处罚确认"]).value = value


def _reverse(wb) -> None:
    """The manager sorted 全部投诉 the other way round."""
    ws = wb["全部投诉"]
    _heads, rows = _rows(ws, "主管批示")
    values = [[c.value for c in ws[r]] for r in rows]
    for r, row in zip(rows, reversed(values), strict=True):
        for col, v in enumerate(row, start=1):
            ws.cell(r, col).value = v


def _duplicate(wb, index: int, value) -> None:
    """A row copied below the table, its 主管批示 changed: the same 记录标识 twice."""
    ws = wb["全部投诉"]
    heads, rows = _rows(ws, "主管批示")
    below = rows[-1] + 1
    for col, cell in enumerate(ws[rows[index]], start=1):
        ws.cell(below, col).value = cell.value
    ws.cell(below, heads["主管批示"]).value = value


CASES = {
    "saved, nothing typed": [],
    "typed, cleared, retyped as written": [
        lambda wb: _approve(wb, 0, "同意，按流程处理"), lambda wb: _approve(wb, 1, None),
        lambda wb: _approve(wb, 3, "店长已阅 3"), lambda wb: _approve(wb, 5, "店长已阅 5 改")],
    "处罚确认": [lambda wb: _confirm(wb, 0, "免除"), lambda wb: _confirm(wb, 2, "确认"),
                 lambda wb: _confirm(wb, 3, "  ")],
    "a date and a number typed": [lambda wb: _approve(wb, 2, datetime(2026, 3, 9, 9, 30)),
                                  lambda wb: _approve(wb, 4, 42), lambda wb: _approve(wb, 1, 7.0)],
    "sorted the other way, then typed": [_reverse, lambda wb: _approve(wb, 0, "已回访")],
    "a row copied below, its cell changed": [lambda wb: _duplicate(wb, 1, "复制后改")],
    # the copy is the later row: it wins, and the change above it is not taken (as before)
    "a row copied below as it was": [lambda wb: _duplicate(wb, 2, None), lambda wb: _approve(wb, 2, "原行改"),
                                     lambda wb: _approve(wb, 4, "另一行")],
    "formula-looking text": [lambda wb: _approve(wb, 6, "'=1+1"), lambda wb: _approve(wb, 7, "<b>&amp;</b>")],
    "a formula typed": [lambda wb: _approve(wb, 0, "=1+1"), lambda wb: _approve(wb, 3, '="已"&"阅"')],
    "a true and a long text": [lambda wb: _approve(wb, 0, True), lambda wb: _approve(wb, 2, "批" * 5000)],
}


def _since(path: Path) -> dict:
    """Cells read back after the write: two of 全部投诉's, one of 处罚's (as stored, texts)."""
    back = read_manager_edits(path, SHEETS)
    refs = sorted(back.cells["全部投诉"])
    events = sorted(back.cells["处罚"])
    return {"全部投诉": {refs[0]: {"manager_approval": "之前读回的"}, refs[1]: {"manager_approval": ""}},
            "处罚": {events[1]: {"confirm": "免除"}}}


@pytest.mark.parametrize("side_rows", [editscan.SIDE_ROWS, 0])
@pytest.mark.parametrize("with_since", [False, True])
@pytest.mark.parametrize("layout", ["openpyxl", "excel"])
@pytest.mark.parametrize("case", list(CASES))
def test_same_edits_as_the_whole_read(written, tmp_path, monkeypatch, case, layout, with_since, side_rows):
    monkeypatch.setattr(editscan, "SIDE_ROWS", side_rows)
    path = tmp_path / "saved.xlsx"
    wb = openpyxl.load_workbook(written)
    for edit in CASES[case]:
        edit(wb)
    wb.save(path)
    if layout == "excel":
        excel_save(path, tmp_path / "excel.xlsx")
        path = tmp_path / "excel.xlsx"
        with zipfile.ZipFile(path) as zf:
            assert b"inlineStr" not in zf.read("xl/worksheets/sheet2.xml")
    since = _since(written) if with_since else {}
    found = changed_cells(path, SHEETS, since)
    assert found is not None
    expected = _reference(path, since)
    assert found.edits == {name: expected.get(name, {}) for name in found.edits}
    assert set(found.edits) == {"全部投诉", "处罚"}
    if case != "saved, nothing typed" or with_since:
        assert any(found.edits.values())   # the cases do change something


@pytest.mark.parametrize("side_rows", [editscan.SIDE_ROWS, 0])
def test_this_programs_own_layout(written, tmp_path, monkeypatch, side_rows):
    """A copy of the workbook as written (unnumbered cells, inline strings): nothing changed,
    except what ``since`` says was read back before."""
    monkeypatch.setattr(editscan, "SIDE_ROWS", side_rows)
    path = tmp_path / "copy.xlsx"
    shutil.copy(written, path)
    for since in ({}, _since(written)):
        found = changed_cells(path, SHEETS, since)
        assert found is not None and found.store_id
        assert found.edits == {name: _reference(path, since).get(name, {}) for name in found.edits}
    assert any(found.edits.values())


def test_the_store_that_wrote_it(written, tmp_path):
    path = tmp_path / "saved.xlsx"
    openpyxl.load_workbook(written).save(path)
    assert changed_cells(path, SHEETS, {}).store_id == read_manager_edits(path, SHEETS).store_id


def test_read_whole_when_keyed_otherwise_or_unrecorded(written, tmp_path):
    """An old workbook keyed by shop and id, or one without ``_rendered``: None, and the caller
    reads it whole as before."""
    old = tmp_path / "old.xlsx"
    wb = openpyxl.load_workbook(written)
    ws = wb["全部投诉"]
    _h, heads = _header(ws, "主管批示")
    ws.delete_cols(heads["记录标识"])
    wb.save(old)
    assert changed_cells(old, SHEETS, {}) is None
    bare = tmp_path / "bare.xlsx"
    wb = openpyxl.load_workbook(written)
    del wb["_rendered"]
    wb.save(bare)
    assert changed_cells(bare, SHEETS, {}) is None
    torn = tmp_path / "torn.xlsx"
    torn.write_bytes(written.read_bytes()[:5000])
    assert changed_cells(torn, SHEETS, {}) is None


@pytest.mark.parametrize("sheet", ["全部投诉", "处罚"])
def test_a_cell_typed_far_away_stops_nothing(written, tmp_path, sheet):
    """A keystroke at XFD1048576: calamine would ask for 512 GiB for that sheet and abort the
    daemon. Both reads skip the far cell and take the manager's cell in the table."""
    path = tmp_path / "far.xlsx"
    wb = openpyxl.load_workbook(written)
    _approve(wb, 0, "同意")
    wb[sheet]["XFD1048576"] = "按错了"
    wb.save(path)
    found = changed_cells(path, SHEETS, {})
    assert found is not None and found.edits == {name: _reference(path, {}).get(name, {}) for name in found.edits}
    assert [cells["manager_approval"] for cells in found.edits["全部投诉"].values()] == ["同意"]


def test_read_back_takes_the_managers_cells(tmp_path):
    """Through ``read_back``, as the daemon calls it: a manager's save of 主管批示 and 处罚确认
    goes into the store, and the rewrite shows it."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    _fill(store)
    scan_once(store, now=NOW, rules=RULES)
    out = tmp_path / "汇总.xlsx"
    render_merged(store, out, now=NOW)
    wb = openpyxl.load_workbook(out)
    _reverse(wb)
    _approve(wb, 0, "已回访，同意")
    _confirm(wb, 1, "免除")
    wb.save(out)
    assert read_back(store, out, now=NOW) == 2
    approvals = {cells.get("manager_approval") for cells in store.manager_edits("全部投诉").values()}
    assert approvals == {"已回访，同意"}
    assert [c["confirm"] for c in store.manager_edits("处罚").values()] == ["免除"]
    render_merged(store, out, now=NOW)
    wb = openpyxl.load_workbook(out)
    shown = [c.value for row in wb["全部投诉"].iter_rows() for c in row]
    assert "已回访，同意" in shown and "免除" in [c.value for row in wb["处罚"].iter_rows() for c in row]


def test_the_whole_read_takes_a_table_of_any_size(written, tmp_path, monkeypatch):
    """The whole read (another store's workbook, an old one) cuts far cells only: a table as
    big as the chain is read, where a shop's file that big is refused (complaint_core/bounds.py)."""
    from complaint_core import bounds
    from complaint_core.errors import UnreadableWorkbook
    from complaint_core.safety import WorkbookFacts

    monkeypatch.setattr(bounds, "CELL_BUDGET", 40)   # the fixture's tables are bigger than this
    path = tmp_path / "saved.xlsx"
    wb = openpyxl.load_workbook(written)
    _approve(wb, 0, "同意")
    wb["处罚"]["XFD1048576"] = "按错了"
    wb.save(path)
    with pytest.raises(UnreadableWorkbook):
        bounds.bound_sheets(path, WorkbookFacts(kind="xlsx"))
    back = read_manager_edits(path, SHEETS)
    assert [cells["manager_approval"] for cells in back.edits["全部投诉"].values()] == ["同意"]


def test_a_save_by_libreoffice(written, tmp_path):
    """The manager's typing saved by LibreOffice (its own layout: shared strings, numbered
    cells, formatted empty rows under the tables): the same edits as the whole read."""
    import fcntl
    import subprocess
    import tempfile

    from tests.support.libreoffice import _LOCK

    typed = tmp_path / "typed.xlsx"
    wb = openpyxl.load_workbook(written)
    _approve(wb, 0, "同意，按流程处理")
    _approve(wb, 1, None)
    _confirm(wb, 0, "免除")
    wb.save(typed)
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    assert soffice, "LibreOffice (soffice) is not installed: run scripts/test.sh"
    with tempfile.TemporaryDirectory() as profile, open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run([soffice, "--headless", "--norestore", f"-env:UserInstallation=file://{profile}/p",
                        "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(tmp_path / "lo"), str(typed)],
                       capture_output=True, timeout=180, check=True)
    path = tmp_path / "lo" / "typed.xlsx"
    with zipfile.ZipFile(path) as zf:
        assert "xl/sharedStrings.xml" in zf.namelist()
    found = changed_cells(path, SHEETS, {})
    assert found is not None
    assert found.edits == {name: _reference(path, {}).get(name, {}) for name in found.edits}
    assert sorted(len(v) for v in found.edits.values()) == [1, 2]


def test_a_shared_string_number_past_the_table_is_not_made_room_for(written, tmp_path):
    """A cell naming shared string 99,999,999,999 (a damaged or hostile file): no 12 GB set of
    numbers is made; the workbook is read whole instead, which finds the string missing."""
    path = tmp_path / "excel.xlsx"
    excel_save(written, path)

    def far_number(xml: bytes) -> bytes:
        at = xml.index(b't="s"><v>', xml.index(b'<row r="4"'))
        return xml[:at] + b't="s"><v>99999999999' + xml[xml.index(b"</v>", at):]

    bad = _rewritten(path, tmp_path / "bad.xlsx", far_number)
    scan = editscan._Scan(bad)
    try:
        assert 0 < scan.shared_limit < 10_000_000
        with pytest.raises(editscan._Otherwise):
            scan.key_bits.add(99_999_999_999)
    finally:
        scan.close()
    assert changed_cells(bad, SHEETS, {}) is None


@settings(max_examples=300, deadline=None)
@given(inner=st.text(max_size=12), wrap=st.sampled_from(['["{}"]', '["{}","x"]', '{}', '[["{}"]]', '["{}"', '[ "{}" ]']))
def test_a_rendered_key_is_hashed_as_its_json_reads(inner: str, wrap: str) -> None:
    """The key of a ``_rendered`` row taken without JSON where it is one plain text hashes as
    the JSON of it reads: quotes, backslashes, control characters and other shapes read by JSON."""
    import json

    text = wrap.format(inner)
    try:
        parts = json.loads(text)
        want = editscan._key_hash(tuple(parts)) if isinstance(parts, list) else 0
    except (ValueError, TypeError):
        want = 0
    assert editscan._json_key_hash(text) == want
