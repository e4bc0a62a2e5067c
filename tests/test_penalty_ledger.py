"""The penalty ledger as the texts set it (seed 001 第五篇 7): tiers by loss, the person AND the
department head, only for valid complaints caused by staff or company, delays charged to whoever
delayed, and what nobody has reviewed kept apart as 待确认."""

from __future__ import annotations

from datetime import datetime

import pytest
from openpyxl import load_workbook

from complaint_core.errors import BadSetting
from complaint_core.overdue import scan
from complaint_core.penalties import (
    DEFAULT_RULES,
    LossTier,
    events_for,
    loss_events,
    monthly_totals,
)
from complaint_core.rules_book import (
    S_STAFF,
    S_TIERS,
    Person,
    Rules,
    build_rules_template,
    load_rules,
)

TIERS = (LossTier("L1", 0, 1000, 0.05, 30, 0.02, 10, "小额"),
         LossTier("L2", 1000, 10000, 0.10, 300, 0.05, 100, "较大"),
         LossTier("L3", 10000, None, 0.20, 800, 0.10, 400, "重大"))
HEADS = {"售后部": "赵主管"}
BASES = {"张强": 4000.0, "赵主管": 6000.0}
NOW = datetime(2026, 3, 20, 12)


def rec(n, **kw):
    base = {"record_id": f"A\x1f{n}", "shop": "A", "complaint_id": f"A-{n}", "received_at": datetime(2026, 3, 2, 10),
            "first_contact_at": datetime(2026, 3, 2, 11), "feedback_at": datetime(2026, 3, 3, 9),
            "responsible_person": "张强", "responsible_dept": "售后部", "validity": "成立",
            "root_cause": "员工原因", "category": "售后维修"}
    base.update(kw)
    return base


def ledger(*recs, bases=BASES):
    return loss_events({r["record_id"]: r for r in recs}, TIERS, HEADS, bases)


@pytest.mark.parametrize("loss, tier, person, head", [
    (300, "L1", 200.0, 120.0),        # 4000 x 5%, 6000 x 2%
    (1000, "L1", 200.0, 120.0),       # the upper bound belongs to the lower tier
    (1000.01, "L2", 400.0, 300.0),    # 4000 x 10%, 6000 x 5%
    (50_000, "L3", 800.0, 600.0),     # 4000 x 20%, 6000 x 10%: not 10% of the loss (5,000)
])
def test_tiers_charge_the_person_and_the_head_a_share_of_their_base(loss, tier, person, head):
    evs = ledger(rec(1, loss_amount=loss))
    assert [(e.rule_id, e.kind, e.person, e.amount) for e in evs] == [
        (tier, "loss", "张强", person), (tier, "loss_head", "赵主管", head)]
    assert len({e.event_id for e in evs}) == 2
    assert "扣款基数" in evs[0].why and "部门负责人" in evs[1].why


def test_without_a_base_the_tiers_fixed_amount_applies():
    evs = ledger(rec(1, loss_amount=5000), bases={})
    assert [(e.person, e.amount) for e in evs] == [("张强", 300.0), ("赵主管", 100.0)]
    assert "固定金额" in evs[0].why


@pytest.mark.parametrize("change", [
    {"root_cause": "外部原因"}, {"root_cause": "客户原因"}, {"root_cause": "待查"}, {"root_cause": None},
    {"validity": "待判定"}, {"validity": "不成立"}, {"category": "骚扰来电"}, {"loss_amount": 0},
    {"responsible_person": None}, {"deleted": True},
])
def test_no_loss_penalty_unless_valid_and_caused_by_staff_or_company(change):
    assert ledger(rec(1, **({"loss_amount": 2000} | change))) == []
    assert ledger(rec(1, loss_amount=2000, root_cause="企业原因"))    # the company's fault counts too


def test_the_head_is_not_charged_twice_when_they_are_the_responsible_person():
    evs = ledger(rec(1, loss_amount=2000, responsible_person="赵主管"))
    assert [(e.person, e.kind, e.amount) for e in evs] == [("赵主管", "loss", 600.0)]


def test_delay_is_charged_to_whoever_delayed_and_not_for_harassment_calls():
    late = rec(1, first_contact_at=None, feedback_at=datetime(2026, 3, 3, 9), responsible_person=None,
               received_by="陈静", loss_amount=None)
    harass = rec(2, category="骚扰来电", first_contact_at=None, feedback_at=None, loss_amount=5000)
    recs = {r["record_id"]: r for r in (late, harass)}
    evs = events_for(scan(recs.values(), now=NOW), recs, DEFAULT_RULES, HEADS, tiers=TIERS, bases=BASES)
    assert [(e.complaint_id, e.rule_id, e.person, e.amount) for e in evs] == [("A-1", "P1", "陈静", 50)]
    assert evs[0].why.startswith("延误追究")


def test_unreviewed_penalties_are_kept_apart_from_confirmed_ones():
    evs = ledger(rec(1, loss_amount=300), rec(2, loss_amount=2000))
    conf = {evs[0].event_id: "确认", evs[2].event_id: "免除"}
    totals = {t["person"]: t for t in monthly_totals(evs, conf)}
    # 张强: 200 confirmed, 400 (rec 2, L2) waived; 赵主管: 120 + 300 nobody reviewed yet
    assert (totals["张强"]["due"], totals["张强"]["pending"], totals["张强"]["waived"]) == (200.0, 0.0, 400.0)
    assert (totals["赵主管"]["due"], totals["赵主管"]["pending"]) == (0.0, 420.0)


def test_rules_workbook_round_trips_tiers_and_bases(tmp_path):
    p = tmp_path / "rules.xlsx"
    rules = Rules(staff=(Person("张强", "售后部", "赵主管", "zq@example.com", "", base=4000.0),
                         Person("赵主管", "售后部", "", "zhao@example.com")), tiers=TIERS)
    build_rules_template(p, rules)
    got = load_rules(p)
    assert got.tiers == TIERS and got.staff == rules.staff and got.bases() == {"张强": 4000.0}


def test_a_rules_workbook_from_an_earlier_version_still_loads(tmp_path):
    p = tmp_path / "old.xlsx"
    build_rules_template(p, Rules(staff=(Person("张强", "售后部", "赵主管", "zq@example.com"),)))
    wb = load_workbook(p)
    del wb[S_TIERS]
    ws = wb[S_STAFF]
    ws.delete_cols(6, 2)                                    # no 手机, no 扣款基数 column
    wb["处罚规则"].append(["P4", "loss", 0, 0, 0.1, "造成损失，按损失金额比例处罚"])   # the old loss rule
    wb.save(p)
    got = load_rules(p)
    assert got.tiers == Rules().tiers and got.bases() == {} and got.staff[0].name == "张强"
    recs = {"A\x1f1": rec(1, loss_amount=50_000)}
    evs = events_for([], recs, got.penalties, {"售后部": "赵主管"}, tiers=got.tiers, bases=got.bases())
    assert sorted(e.amount for e in evs) == [200.0, 500.0]   # L3 fixed amounts, not 5,000


def test_a_staff_sheet_with_columns_added_later_finds_the_base_by_its_header(tmp_path):
    p = tmp_path / "rules.xlsx"
    build_rules_template(p, Rules(staff=(Person("张强", "售后部", "赵主管", "zq@example.com", "", base=4000.0),)))
    wb = load_workbook(p)
    wb[S_STAFF].insert_cols(6)                              # e.g. a 手机 column before it
    wb[S_STAFF]["F1"] = "手机"
    wb[S_STAFF]["F2"] = "13800138000"
    wb.save(p)
    assert load_rules(p).bases() == {"张强": 4000.0}


@pytest.mark.parametrize("cell, value, reason", [
    ("D2", 5, "比例应在 0 到 1 之间"),
    ("C2", 0, "损失上限须大于下限"),
    ("B3", 100, "与上一级重叠"),
    ("E2", "五十", "应为数字"),
])
def test_bad_tier_cells_are_named(tmp_path, cell, value, reason):
    p = tmp_path / "rules.xlsx"
    build_rules_template(p, Rules())
    wb = load_workbook(p)
    wb[S_TIERS][cell] = value
    wb.save(p)
    with pytest.raises(BadSetting) as e:
        load_rules(p)
    assert f"[{S_TIERS}] {cell}" in str(e.value) and reason in str(e.value)


def test_bad_base_is_named(tmp_path):
    p = tmp_path / "rules.xlsx"
    build_rules_template(p, Rules(staff=(Person("张强", "售后部", "赵主管", "zq@example.com", "", base=4000.0),)))
    wb = load_workbook(p)
    wb[S_STAFF]["G2"] = "四千"
    wb.save(p)
    with pytest.raises(BadSetting, match=r"\[人员\] G2.*四千"):
        load_rules(p)
