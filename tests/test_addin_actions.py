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
    # Measured: validate 13, fill 15, new 11, about 8 Excel calls, at 10 and at 10,000 rows
    # (each includes 2 for the WPS check at start and 1 for reading the 节假日 sheet; validate
    # 2 more for the 处理手册 escalation words).
    # ("about" only reads, like the others' first step; it is left out at 10,000 rows to
    # keep the test fast.)
    small = _calls_per_button(shop(tmp_path, 10, name="s10.xlsx"))
    assert small == {"cd_validate": 13, "cd_fill": 15, "cd_new": 11, "cd_about": 8}, small
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
    # one block of marks; the colours are the template's conditional formats (no call at all)
    assert port.calls["write_block"] == 1 and port.calls["replace_sheet"] == 2


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


# --- Mac, WPS, old workbooks, the shop's holidays ------------------------------------------

def test_marks_are_coloured_by_the_templates_own_conditional_formats(tmp_path):
    path = shop(tmp_path, 25)
    rules_before = sorted(str(r.sqref) for r in load_workbook(path).worksheets[0].conditional_formatting)
    press(path, "cd_validate")
    wb = load_workbook(path)
    ws = wb.worksheets[0]
    assert sorted(str(r.sqref) for r in ws.conditional_formatting) == rules_before   # none added
    marks_rules = [r.formula[0] for rng in ws.conditional_formatting for r in rng.rules if MARKS_SHEET in r.formula[0]]
    assert marks_rules == [f"'{MARKS_SHEET}'!A2=2", f"'{MARKS_SHEET}'!A2=1"]
    assert wb[MARKS_SHEET]["G3"].value == 2 and wb[MARKS_SHEET].sheet_state == "hidden"


def test_a_workbook_without_the_templates_marks_gets_one_line_not_an_error(tmp_path):
    from tests.support.workbooks import write_shop_workbook

    rows = sample_rows(5, seed=2, now=NOW)
    rows[1]["customer_phone"] = "123"
    path = write_shop_workbook(tmp_path / "old.xlsx", rows, shop_code="SH01")
    port, message = press(path, "cd_validate")
    assert message.startswith("校验完成：5 行，1 个错误") and "没有标记颜色" in message
    assert MARKS_SHEET not in load_workbook(path).sheetnames and "出错" not in message


@pytest.mark.parametrize(("version", "path", "wps"), [
    ("16.0", r"C:\Program Files\Microsoft Office\root\Office16", False),
    ("16.89", "/Applications/Microsoft Excel.app", False),
    ("12.0", r"C:\Program Files\Microsoft Office\Office12", False),     # Excel 2007
    ("15.0", "", False),
    ("11.1.0.10116", "", True),
    ("12.1.0.16120", r"C:\Users\a\AppData\Local\Kingsoft\WPS Office\12.1.0.16120\office6", True),
    ("16.0", r"D:\WPS Office\office6", True),                             # registered as Excel 16
    ("", "", False),
])
def test_is_wps(version, path, wps):
    from excel_addin.actions import is_wps

    assert is_wps(version, path) is wps


def test_wps_in_excels_place_is_answered_with_one_line(tmp_path):
    from tests.support.xlwings_standin import WPS

    path = shop(tmp_path, 5, name="投诉-SH01.xlsx")
    port = MemoryPort(path, now=NOW, app_version=WPS["version"], app_path=WPS["path"])
    for button in BUTTONS:
        message = run_button(port, button, vba_version="0.37.8", xlwings_version="0.37.8")
        assert "\n" not in message and "WPS" in message and "_反馈/投诉-SH01_反馈.xlsx" in message
    # nothing was read or written: the check comes first
    assert set(port.calls) == {"app_identity", "book_name"}


def test_the_shops_holidays_reach_the_addins_deadlines(tmp_path):
    from datetime import datetime

    rows = sample_rows(3, seed=4, now=NOW)
    for r in rows:
        r.update(contact_due=None, feedback_due=None, followup_due=None, suggested_steps=None, resolved_at=None,
                 first_contact_at=None, feedback_at=None, followup_at=None, status="处理中")
    rows[0]["received_at"] = datetime(2026, 12, 31, 17, 0)
    path = write_rows(tmp_path / "hol.xlsx", rows, shop="SH01")
    wb = load_workbook(path)
    for row in wb["设置"].iter_rows(min_row=2):
        if row[0].value == "按工作时间计算":
            row[1].value = "是"
    for i, day in enumerate((1, 2, 3), start=6):
        wb["节假日"].cell(row=i, column=1, value=datetime(2027, 1, day))
        wb["节假日"].cell(row=i, column=2, value="休息")
    wb.save(path)
    port = MemoryPort(path, now=datetime(2027, 1, 8, 12, 0))
    run_button(port, "cd_fill", vba_version=None, xlwings_version="0.37.8")
    port.save()
    assert read_workbook(path).rows[0].values["contact_due"] == datetime(2027, 1, 4, 10, 0)


# --- the real adapter (XlwingsPort) on an xlwings stand-in, as Windows and as a Mac ----------

def _standin_press(path, platform, buttons=BUTTONS, **kw):
    from excel_addin.xlwings_port import XlwingsPort
    from tests.support.xlwings_standin import XlwingsStandin

    standin = XlwingsStandin(path, platform=platform, **kw)
    port = XlwingsPort(standin.book)
    port.now = lambda: NOW   # the shop PC's clock, fixed so the findings can be compared
    messages = {}
    counts = {}
    for button in buttons:
        before = standin.total_calls
        messages[button] = run_button(port, button, vba_version="0.37.8", xlwings_version="0.37.8")
        counts[button] = standin.total_calls - before
    standin.save()
    return standin, messages, counts


@pytest.mark.parametrize("platform", ["windows", "mac"])
def test_every_button_works_through_the_real_adapter_without_com(tmp_path, platform):
    rows = sample_rows(20, seed=6, now=NOW)
    inject_defects(rows, now=NOW)
    for r in rows[::3]:
        r["suggested_steps"] = None
        r["contact_due"] = None
    reference = write_rows(tmp_path / "ref.xlsx", rows, shop="SH01")
    path = write_rows(tmp_path / f"{platform}.xlsx", rows, shop="SH01")
    press(reference, "cd_validate")
    press(reference, "cd_fill")

    standin, messages, _counts = _standin_press(path, platform)
    assert standin.api_used == []                       # no COM name, on either platform
    assert all("出错" not in m for m in messages.values()), messages
    assert messages["cd_validate"].startswith("校验完成") and "\n" not in messages["cd_validate"]
    wb, ref = load_workbook(path), load_workbook(reference)
    assert wb[MARKS_SHEET].sheet_state == "hidden" and wb[MARKS_SHEET]["G3"].value == 2
    listed = [r[:7] for r in wb["校验结果"].iter_rows(values_only=True)]
    assert listed == [r[:7] for r in ref["校验结果"].iter_rows(values_only=True)]
    # fill wrote the same cells as through the counting stand-in (new_complaint then added a row)
    got = read_workbook(path).rows
    assert [r.values for r in got[:-1]] == [r.values for r in read_workbook(reference).rows]
    assert got[-1].values["complaint_id"].startswith("SH01-") and standin.alerts == []
    assert standin.state["calculation"] == "automatic" and standin.app_states   # quiet, then restored


def test_mac_features_that_fail_are_skipped_with_a_line(tmp_path):
    path = shop(tmp_path, 8)
    standin, messages, _ = _standin_press(path, "mac", ("cd_validate", "cd_fill"),
                                          unsupported={"visible", "selection", "properties"})
    validate_lines = messages["cd_validate"].split("\n")
    assert validate_lines[0].startswith("校验完成") and len(validate_lines) == 3
    assert "隐藏" in validate_lines[2] and "屏幕刷新" in validate_lines[1]
    assert "选中" in messages["cd_fill"] and messages["cd_fill"].startswith("已为")
    assert load_workbook(path)[MARKS_SHEET]["G3"].value == 2


def test_a_mac_reference_has_no_com_names(tmp_path):
    from tests.support.xlwings_standin import XlwingsStandin

    standin = XlwingsStandin(shop(tmp_path, 2, defects=False), platform="mac")
    with pytest.raises(AttributeError, match="Unknown property"):
        _ = standin.book.sheets[0].range("A1:B2").api.FormatConditions


def test_wps_through_the_real_adapter(tmp_path):
    from tests.support.xlwings_standin import WPS

    path = shop(tmp_path, 4, name="门店.xlsx")
    standin, messages, _ = _standin_press(path, "windows", ("cd_validate",), app=WPS)
    assert "_反馈/门店_反馈.xlsx" in messages["cd_validate"] and "校验结果" not in load_workbook(path).sheetnames


@pytest.mark.parametrize("platform", ["windows", "mac"])
def test_real_adapter_calls_do_not_grow_with_rows(tmp_path, platform):
    small = _standin_press(shop(tmp_path, 10, name="s10.xlsx"), platform)[2]
    large = _standin_press(shop(tmp_path, 400, name="s400.xlsx"), platform)[2]
    assert small == large, (small, large)
