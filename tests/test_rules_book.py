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
    assert got.settings == DEFAULT.settings
    assert got.penalties == DEFAULT.penalties
    assert got.reminder_times == (time(9), time(15))
    assert got.staff == rules.staff and got.heads() == {"门店": "李店长"}


@pytest.mark.parametrize("sheet,cell,value,reason", [
    (S_DEADLINES, "B2", "两小时", "应为数字"),
    (S_DEADLINES, "B6", "九点", "应为时间"),
    (S_DEADLINES, "B5", "也许", "应为 是 或 否"),
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
