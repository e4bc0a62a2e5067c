"""The add-in's buttons on a counting stand-in for Excel: same results as headless, O(1) calls."""

from __future__ import annotations

import pytest
from openpyxl import load_workbook

from complaint_core.reader import read_workbook
from complaint_core.suggest import fills_for_table
from complaint_core.validate import validate_table
from excel_addin import run_button
from excel_addin.actions import MARKS_SHEET, validate
from excel_addin.memory_port import MemoryPort
from tests.support.workbooks import NOW, inject_defects, sample_rows, write_rows


def shop(tmp_path, n, *, defects=True, name="shop.xlsx"):
    rows = sample_rows(n, seed=n, now=NOW)
    if defects:
        inject_defects(rows, now=NOW)
    return write_rows(tmp_path / name, rows, shop="SH01")


def press(path, button, **kw):
    port = MemoryPort(path, now=NOW, **kw)
    message = run_button(port, button, vba_version="0.37.8", xlwings_version="0.37.8")
    port.save()
    return port, message


def test_validate_gives_the_same_findings_as_the_cli(tmp_path):
    path = shop(tmp_path, 25)
    headless = validate_table(read_workbook(path), now=NOW)
    port, message = press(path, "cd_validate")
    wb = load_workbook(path)
    listed = [tuple(r) for r in wb["校验结果"].iter_rows(min_row=2, values_only=True)]
    assert [(f.row, f.cell, f.code, f.message) for f in headless] == [(r[1], r[2], r[5], r[6]) for r in listed]
    assert "4 个错误" in message
    marks = wb[MARKS_SHEET]
    assert marks.sheet_state == "hidden" and marks["G3"].value == 2


def test_validate_clears_fixed_marks(tmp_path):
    path = shop(tmp_path, 10)
    press(path, "cd_validate")
    wb = load_workbook(path)
    wb.worksheets[0]["G3"].value = "13800138000"
    wb.save(path)
    press(path, "cd_validate")
    assert load_workbook(path)[MARKS_SHEET]["G3"].value is None


def test_fill_gives_the_same_cells_as_the_cli(tmp_path):
    rows = sample_rows(12, seed=3, now=NOW)
    for r in rows[::2]:
        r["complaint_id"] = None
    path = write_rows(tmp_path / "s.xlsx", rows, shop="SH01")
    expected = {(f.row, k): v for f in fills_for_table(read_workbook(path), now=NOW) for k, v in f.values.items()}
    press(path, "cd_fill")
    after = read_workbook(path)
    got = {(r.row, k): r.values[k] for r in after.rows for (row, k) in expected if row == r.row}
    assert got == expected


def test_fill_selected_rows_only_and_never_overwrites(tmp_path):
    rows = sample_rows(6, seed=4, now=NOW)
    rows[2]["suggested_steps"] = "店长写的"
    path = write_rows(tmp_path / "s.xlsx", rows, shop="SH01")
    press(path, "cd_fill", selection=[3, 4])
    after = {r.row: r.values for r in read_workbook(path).rows}
    assert after[3]["suggested_steps"] and after[4]["suggested_steps"] == "店长写的"
    assert after[2]["suggested_steps"] is None and after[5]["suggested_steps"] is None


def test_new_complaint_row(tmp_path):
    path = shop(tmp_path, 5, defects=False)
    _port, message = press(path, "cd_new")
    last = read_workbook(path).rows[-1]
    assert last.row == 7 and last.values["complaint_id"] == "SH01-20261120-001"
    assert last.values["received_at"] == NOW and "2 小时" in message


def test_about_version_mismatch_unknown_button_and_py_sheets(tmp_path):
    path = shop(tmp_path, 3, defects=False)
    port, message = press(path, "cd_about")
    assert "SH01" in message and "日志" in message
    port = MemoryPort(path, now=NOW)
    assert "complaint-desk addin install" in run_button(port, "cd_validate", vba_version="0.30.0",
                                                        xlwings_version="0.37.8")
    assert "未知按钮" in run_button(port, "nope", vba_version=None, xlwings_version="0.37.8")
    port.wb.create_sheet("evil.py")
    assert ".py" in run_button(port, "cd_validate", vba_version=None, xlwings_version="0.37.8")


def test_errors_are_messages_not_tracebacks(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["a", "b"])
    wb.save(tmp_path / "other.xlsx")
    port = MemoryPort(tmp_path / "other.xlsx", now=NOW)
    assert "没有找到投诉登记表" in run_button(port, "cd_validate", vba_version=None, xlwings_version="0.37.8")


BUTTONS = ("cd_validate", "cd_fill", "cd_new", "cd_about")


def _calls_per_button(path, buttons=BUTTONS) -> dict[str, int]:
    """Press each button once on one stand-in; the Excel calls each press made."""
    port = MemoryPort(path, now=NOW)
    counts = {}
    for button in buttons:
        before = port.total_calls
        message = run_button(port, button, vba_version="0.37.8", xlwings_version="0.37.8")
        assert "出错" not in message, message
        counts[button] = port.total_calls - before
    return counts


@pytest.mark.slow  # ~25 s: writes and reads a 10,000-row workbook
def test_excel_calls_do_not_grow_with_rows(tmp_path):
    # Measured: validate 11 (two read the 处理手册 escalation words), fill 12, new 8, about 5
    # Excel calls, at 10 and at 10,000 rows.
    # ("about" only reads, like the others' first step; it is left out at 10,000 rows to
    # keep the test fast.)
    small = _calls_per_button(shop(tmp_path, 10, name="s10.xlsx"))
    assert small == {"cd_validate": 11, "cd_fill": 12, "cd_new": 8, "cd_about": 5}, small
    large = _calls_per_button(shop(tmp_path, 10_000, name="s10000.xlsx"), BUTTONS[:3])
    assert large == {b: small[b] for b in BUTTONS[:3]}, (small, large)


def test_fill_writes_the_same_workbook_as_the_cli_suggest(tmp_path):
    from complaint_core.annotate import fill_file
    from complaint_core.reader import read_playbook

    rows = sample_rows(30, seed=11, now=NOW)
    for r in rows[::3]:
        r["complaint_id"] = None
    for r in rows[1::4]:
        r["suggested_steps"] = "店长写的"
    cli = write_rows(tmp_path / "cli.xlsx", rows, shop="SH01")
    addin = write_rows(tmp_path / "addin.xlsx", rows, shop="SH01")
    table = read_workbook(cli)
    fill_file(cli, table, fills_for_table(table, read_playbook(cli), now=NOW))
    press(addin, "cd_fill")
    assert [r.values for r in read_workbook(addin).rows] == [r.values for r in read_workbook(cli).rows]


def test_app_state_is_restored_also_when_a_button_fails(tmp_path, monkeypatch):
    from excel_addin import actions
    from excel_addin.port import NORMAL_APP_STATE, QUIET_APP_STATE

    path = shop(tmp_path, 5, defects=False)
    port = MemoryPort(path, now=NOW)

    def broken(_port):
        raise RuntimeError("boom")

    monkeypatch.setitem(actions.HANDLERS, "cd_validate", broken)
    message = run_button(port, "cd_validate", vba_version=None, xlwings_version="0.37.8")
    assert "日志" in message and port.states_seen == [QUIET_APP_STATE]
    assert port.app_state == NORMAL_APP_STATE


def test_validate_marks_many_errors_with_constant_calls(tmp_path):
    rows = sample_rows(300, seed=9, now=NOW)
    for r in rows:
        r["customer_phone"] = "123"
    path = write_rows(tmp_path / "bad.xlsx", rows, shop="SH01")
    port = MemoryPort(path, now=NOW)
    validate(port)
    assert port.calls["write_block"] == 1 and port.calls["set_mark_rules"] == 1


def test_dispatch_alerts_in_excel_and_logs(tmp_path, monkeypatch):
    """The VBA's entry point end to end, with Book.caller() answering the stand-in's workbook."""
    import xlwings

    import excel_addin
    from excel_addin import xlwings_port

    path = shop(tmp_path, 8)
    port = MemoryPort(path, now=NOW)
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "appdata"))

    class Caller:
        name = path.name

    monkeypatch.setattr(xlwings.Book, "caller", classmethod(lambda cls: Caller()))
    monkeypatch.setattr(xlwings_port, "XlwingsPort", lambda book: port)
    excel_addin.dispatch("cd_validate", "0.37.8")
    excel_addin.dispatch("cd_validate", "0.36.0")
    assert port.alerts[0].startswith("校验完成") and "complaint-desk addin install" in port.alerts[1]
    log = (tmp_path / "appdata" / "ComplaintDesk" / excel_addin.LOG_NAME).read_text(encoding="utf-8")
    assert "cd_validate on shop.xlsx: 校验完成" in log
