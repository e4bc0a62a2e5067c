from datetime import datetime, timedelta

import pytest

from complaint_core.deadlines import deadlines
from complaint_core.errors import BadSetting
from complaint_core.ids import next_ids
from complaint_core.model import ComplaintTable, SourceRow
from complaint_core.playbook import DEFAULT_PLAYBOOK, playbook_from_rows, playbook_rows
from complaint_core.schema import KEYS
from complaint_core.settings import Settings, settings_from_rows
from complaint_core.suggest import fills_for_table, suggest_steps
from complaint_core.workcal import add_business_time, is_workday
from tests.support.workbooks import NOW, sample_rows

BIZ = Settings(business_hours=True)


def test_plain_deadlines_follow_the_rules():
    received = datetime(2026, 11, 19, 14, 30)
    d = deadlines({"received_at": received, "resolved_at": datetime(2026, 11, 20, 9, 0)})
    assert d.contact_due == datetime(2026, 11, 19, 16, 30)
    assert d.feedback_due == datetime(2026, 11, 22, 14, 30)
    assert d.followup_due == datetime(2026, 11, 23, 9, 0)
    assert "2小时" in d.why_zh and "3日" in d.why_zh


def test_unresolved_has_no_followup_deadline():
    assert deadlines({"received_at": NOW}).followup_due is None


def test_configurable_deadlines():
    d = deadlines({"received_at": NOW}, Settings(contact_hours=1, feedback_days=1))
    assert d.contact_due == NOW + timedelta(hours=1) and d.feedback_due == NOW + timedelta(days=1)


def test_business_hours_skip_national_day_and_count_make_up_saturday():
    # 2026 National Day: 1-7 Oct off; Saturday 10 Oct is a make-up working day (调休).
    assert not is_workday(datetime(2026, 10, 3).date(), BIZ)
    assert is_workday(datetime(2026, 10, 10).date(), BIZ)
    start = datetime(2026, 9, 30, 17, 0)
    assert add_business_time(start, timedelta(hours=2), BIZ) == datetime(2026, 10, 8, 10, 0)
    d = deadlines({"received_at": start}, BIZ)
    assert d.feedback_due == datetime(2026, 10, 10, 17, 0)
    assert "工作时间" in d.why_zh


def test_business_hours_friday_evening_to_monday():
    friday = datetime(2026, 11, 20, 20, 0)
    assert add_business_time(friday, timedelta(hours=2), BIZ) == datetime(2026, 11, 23, 11, 0)
    assert add_business_time(friday, timedelta(hours=2), Settings()) == datetime(2026, 11, 20, 22, 0)


def _steps(**row):
    base = {"received_at": NOW - timedelta(hours=1)}
    return suggest_steps(base | row, now=NOW)


def test_suggestions_always_outline_six_steps_and_recovery():
    text = _steps()
    # named and referred to 处理手册, where they are in full (never repeated in each cell)
    assert "六步法" in text and "服务补救" in text and "处理手册" in text and "电话联系客户" in text
    assert "鼓励客户发泄" not in text and "象征性赎罪" not in text


def test_angry_customer_wanting_refund():
    text = _steps(customer_mood="愤怒", customer_request="退款")
    assert "移情法" in text and "退款会在" in text and "争辩" in text


def test_invalid_complaint_uses_sandwich():
    assert "三明治法" in _steps(validity="不成立")


def test_severe_and_connected_customers_escalate():
    assert "预警上报" in _steps(severity="严重")
    assert "预警上报" in _steps(customer_type="有社会背景型")
    assert "上报" not in _steps(severity="一般")


@pytest.mark.parametrize("ctype", ["感情用事型", "滥用正义感型", "固执己见型", "自我陶醉型", "有备而来型"])
def test_every_difficult_type_has_advice(ctype):
    assert _steps(customer_type=ctype) != _steps()


def test_customer_misunderstood_and_beyond_policy():
    assert "3F法" in _steps(request_fit="误解政策")
    assert "7+1" in _steps(request_fit="超出规定")
    assert "7+1" not in _steps(customer_request="赔偿补偿")   # wanting compensation is not beyond policy


def test_overdue_contact_is_flagged_in_steps():
    assert "已超时" in suggest_steps({"received_at": NOW - timedelta(hours=3)}, now=NOW)


def test_playbook_round_trips_and_bad_rows_name_the_cell():
    assert playbook_from_rows(playbook_rows()) == DEFAULT_PLAYBOOK
    rows = playbook_rows()
    rows[3][2] = "狂怒"
    with pytest.raises(BadSetting, match="处理手册!C4"):
        playbook_from_rows(rows)


def test_shop_edits_to_the_playbook_change_suggestions():
    rows = [list(r) for r in playbook_rows()]
    rows.append(["技巧", "客户情绪", "愤怒", "店长出面", "请店长亲自出面", "", "本店规定"])
    book = playbook_from_rows(rows)
    assert "店长亲自出面" in suggest_steps({"received_at": NOW, "customer_mood": "愤怒"}, book, now=NOW)


def test_fills_only_empty_cells():
    rows = sample_rows(3, seed=5, now=NOW)
    rows[0]["complaint_id"] = None
    rows[1]["suggested_steps"] = "店长已写的步骤"
    rows[1]["contact_due"] = datetime(2026, 1, 1)
    table = ComplaintTable(path=None, sheet="s", header_row=1, first_col=0, columns={k: i for i, k in enumerate(KEYS)},
                           extra_columns={}, rows=[SourceRow(row=i + 2, values={k: r.get(k) for k in KEYS})
                                                   for i, r in enumerate(rows)], shop_code="SH01")
    fills = {f.row: f.values for f in fills_for_table(table, now=NOW)}
    assert fills[2]["complaint_id"].startswith("SH01-")
    assert "suggested_steps" not in fills[3] and "contact_due" not in fills[3]
    assert fills[3]["feedback_due"] == rows[1]["received_at"] + timedelta(days=3)
    assert all("complaint_id" not in v for r, v in fills.items() if r != 2)


def test_ids_continue_the_days_sequence_without_collisions():
    day = datetime(2026, 11, 19, 9, 0)
    got = next_ids("SH01", [day, day, None], ["SH01-20261119-001", "SH01-20261119-007", "SH02-20261119-009"],
                   today=datetime(2026, 11, 20))
    assert got == ["SH01-20261119-008", "SH01-20261119-009", "SH01-20261120-001"]


def test_the_shops_settings_sheet_drives_deadlines_everywhere(tmp_path):
    """A shop that switches on business hours in 设置 gets business-hour deadlines from the CLI."""
    from click.testing import CliRunner
    from openpyxl import load_workbook

    from complaint_core.reader import read_workbook
    from complaint_desk.cli import main
    from tests.support.workbooks import write_rows

    friday = datetime(2026, 11, 20, 20, 0)
    row = dict(sample_rows(1, seed=1, now=NOW)[0], received_at=friday, first_contact_at=None,
               feedback_at=None, contact_due=None, feedback_due=None, suggested_steps=None)
    path = write_rows(tmp_path / "s.xlsx", [row], shop="SH01")
    wb = load_workbook(path)
    ws = wb["设置"]
    for r in ws.iter_rows(min_row=2):
        if r[0].value == "按工作时间计算":
            r[1].value = "是"
        if r[0].value == "联系时限（小时）":
            r[1].value = 3
    wb.save(path)
    table = read_workbook(path)
    assert table.settings.business_hours and table.settings.contact_hours == 3
    assert CliRunner().invoke(main, ["suggest", "--now", "2026-11-21T10:00", str(path)]).exit_code == 0
    after = read_workbook(path).rows[0].values
    assert after["contact_due"] == datetime(2026, 11, 23, 12, 0)  # Monday 09:00 + 3 business hours
    assert "11-23 12:00 前电话联系客户" in after["suggested_steps"]


def test_a_bad_setting_names_the_sheet_and_cell(tmp_path):
    from complaint_core.settings import settings_from_rows

    with pytest.raises(BadSetting, match=r"设置!B3.*联系时限"):
        settings_from_rows([["项目", "值"], ["门店代码", "SH01"], ["联系时限（小时）", "两小时"]])
    s = settings_from_rows([["门店代码", 101.0], ["休息日", "6"], ["上班时间", "08:30"], ["按工作时间计算", "否"]])
    assert s.shop_code == "101" and s.rest_weekdays == (6,) and s.workday_start.hour == 8


@pytest.mark.parametrize("typed", [99999999, "1e400", "nan", 367 * 24])
def test_a_time_limit_past_a_year_is_refused_naming_the_setting(typed):
    """99999999 hours (a few zeros too many) pushed every deadline past Python's calendar: the
    shop's file was refused as "cannot be parsed (OverflowError)", naming no setting."""
    with pytest.raises(BadSetting, match=r"设置!B3.*联系时限.*0 到 8784"):
        settings_from_rows([["项目", "值"], ["门店代码", "SH01"], ["联系时限（小时）", typed]])
    with pytest.raises(BadSetting, match=r"反馈时限.*0 到 366"):
        settings_from_rows([["项目", "值"], ["反馈时限（天）", 400]])
    assert settings_from_rows([["项目", "值"], ["联系时限（小时）", 8784]]).contact_hours == 8784


def test_a_bad_setting_is_one_line_from_the_reader_child(tmp_path):
    import openpyxl

    from complaint_core.isolate import _work
    from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

    path = write_shop_workbook(tmp_path / "a.xlsx", sample_rows(2, seed=1, now=NOW, shop="SH01"))
    wb = openpyxl.load_workbook(path)
    ws = wb.create_sheet("设置")
    ws.append(["项目", "值"])
    ws.append(["联系时限（小时）", 99999999])
    wb.save(path)
    answer = _work(str(path), 2048, NOW)
    assert answer[0] == "error" and len(answer) == 3, answer   # no "odd": the child reads on
    assert "设置有误" in answer[2] and "a.xlsx!设置!B2" in answer[2] and "联系时限" in answer[2], answer
