"""The rules workbook: template round-trips, bad cells are named."""

from __future__ import annotations

from datetime import time

import pytest
from openpyxl import load_workbook

from complaint_core.errors import BadSetting
from complaint_core.rules_book import (
    DEFAULT,
    S_DEADLINES,
    S_STAFF,
    Person,
    Rules,
    build_rules_template,
    load_rules,
)


def test_template_round_trip(tmp_path):
    p = tmp_path / "rules.xlsx"
    rules = Rules(staff=(Person("张三", "门店", "李店长", "zs@example.com", "boss@example.com"),))
    build_rules_template(p, rules)
    got = load_rules(p)
    assert load_workbook(p).sheetnames == ["处罚规则", "提醒时间", "人员", "损失分级"]   # deadlines: each shop's own
    assert got.penalties == DEFAULT.penalties
    assert got.reminder_times == (time(9), time(15))
    assert got.staff == rules.staff and got.heads() == {"门店": "李店长"}


@pytest.mark.parametrize("sheet,cell,value,reason", [
    (S_STAFF, "D2", "not-an-email", "邮箱地址无效"),
])
def test_bad_cell_is_named(tmp_path, sheet, cell, value, reason):
    p = tmp_path / "rules.xlsx"
    build_rules_template(p, Rules(staff=(Person("张三", "门店", "李店长", "zs@example.com"),)))
    wb = load_workbook(p)
    wb[sheet][cell] = value
    wb.save(p)
    with pytest.raises(BadSetting) as e:
        load_rules(p)
    assert f"[{sheet}] {cell}" in str(e.value) and reason in str(e.value) and value in str(e.value)


def test_an_old_deadlines_sheet_is_read_by_the_settings_declaration_and_set_aside(tmp_path, caplog):
    # Rules workbooks of earlier versions carried chain-wide deadlines; a record's deadlines now
    # follow its own shop's 设置. The old sheet still loads (a typo in it is still named).
    p = tmp_path / "rules.xlsx"
    build_rules_template(p, Rules(staff=(Person("张三", "门店", "李店长", "zs@example.com"),)))
    wb = load_workbook(p)
    ws = wb.create_sheet(S_DEADLINES, 0)
    ws.append(["项目", "值"])
    ws.append(["联系时限（小时）", 4])
    ws.append(["按工作时间计算", "是"])
    wb.save(p)
    with caplog.at_level("WARNING"):
        got = load_rules(p)
    assert not hasattr(got, "settings") and "不再使用" in caplog.text
    ws["B2"] = "两小时"
    wb.save(p)
    with pytest.raises(BadSetting) as e:
        load_rules(p)
    assert f"{S_DEADLINES}!B2" in str(e.value) and "两小时" in str(e.value)


def test_staff_mobiles_round_trip_and_are_tolerant(tmp_path):
    p = tmp_path / "rules.xlsx"
    rules = Rules(staff=(Person("张三", "门店", "李店长", "zs@example.com", mobile="13800138000"),
                         Person("李店长", "门店", "", "boss@example.com")))
    build_rules_template(p, rules)
    assert load_rules(p).staff == rules.staff
    wb = load_workbook(p)
    ws = wb[S_STAFF]
    assert ws["F1"].value == "手机"
    ws["F2"] = 13900139000.0            # typed into a number cell
    ws["F3"] = "+86 １３７-0013-7000"    # full-width digits, spaces, dashes and the country code
    wb.save(p)
    assert [s.mobile for s in load_rules(p).staff] == ["13900139000", "13700137000"]


def test_staff_sheet_without_the_mobile_column_still_loads(tmp_path):
    p = tmp_path / "rules.xlsx"
    build_rules_template(p, Rules(staff=(Person("张三", "门店", "李店长", "zs@example.com"),)))
    wb = load_workbook(p)
    wb[S_STAFF].delete_cols(6)
    wb.save(p)
    assert load_rules(p).staff[0].mobile == ""


def test_bad_mobile_is_named(tmp_path):
    p = tmp_path / "rules.xlsx"
    build_rules_template(p, Rules(staff=(Person("张三", "门店", "李店长", "zs@example.com"),)))
    wb = load_workbook(p)
    wb[S_STAFF]["F2"] = "1380013"
    wb.save(p)
    with pytest.raises(BadSetting) as e:
        load_rules(p)
    assert "[人员] F2" in str(e.value) and "1380013" in str(e.value) and "手机" in str(e.value)
