"""Penalty events: per event, per day late, share of loss; ids stable; totals respect 确认/免除/申诉."""

from __future__ import annotations

from datetime import datetime

from complaint_core.overdue import scan
from complaint_core.penalties import DEFAULT_RULES, events_for, monthly_totals


def rec(n, **kw):
    base = {"record_id": f"A\x1f{n}", "shop": "A", "complaint_id": f"A-{n}", "received_at": datetime(2026, 3, 2, 10),
            "responsible_person": "张三", "responsible_dept": "门店", "validity": "成立"}
    base.update(kw)
    return base


def test_hand_count_and_idempotent_ids():
    recs = [rec(1), rec(2, first_contact_at=datetime(2026, 3, 2, 11), feedback_at=datetime(2026, 3, 3),
                        loss_amount=300.0, resolved_at=datetime(2026, 3, 3), root_cause="员工原因")]
    now = datetime(2026, 3, 7, 12)
    heads = {"门店": "李店长"}
    evs = events_for(scan(recs, now=now), {r["record_id"]: r for r in recs}, DEFAULT_RULES, heads)
    # rec 1: contact P1 50; feedback P2 50 + 20 x 3 started days (due 03-05 10:00, now 03-07 12:00)
    # rec 2: followup due 03-06 00:00 overdue -> P3 30; loss 300 is tier L1 (0-500): no base on
    # the staff sheet, so the fixed amounts: 张三 50, his head 李店长 20
    by = sorted((e.complaint_id, e.rule_id, e.person, e.amount) for e in evs)
    assert by == sorted([("A-1", "P1", "张三", 50), ("A-1", "P2", "张三", 50), ("A-1", "P2", "张三", 20),
                         ("A-1", "P2", "张三", 20), ("A-1", "P2", "张三", 20), ("A-2", "P3", "张三", 30),
                         ("A-2", "L1", "张三", 50), ("A-2", "L1", "李店长", 20)])
    assert sum(e.amount for e in evs) == 260
    assert all(e.head == "李店长" for e in evs)
    again = events_for(scan(recs, now=now), {r["record_id"]: r for r in recs}, DEFAULT_RULES, heads)
    assert [e.event_id for e in again] == [e.event_id for e in evs]
    assert len({e.event_id for e in evs}) == len(evs)


def test_totals_respect_confirmations():
    recs = [rec(1)]
    evs = events_for(scan(recs, now=datetime(2026, 3, 2, 13)), {r["record_id"]: r for r in recs},
                     DEFAULT_RULES, {})
    assert [e.amount for e in evs] == [50]
    assert monthly_totals(evs, {})[0]["due"] == 0 and monthly_totals(evs, {})[0]["pending"] == 50
    assert monthly_totals(evs, {evs[0].event_id: "免除"})[0]["due"] == 0
    t = monthly_totals(evs, {evs[0].event_id: "申诉"})[0]
    assert t["due"] == 0 and t["appealed"] == 50
    assert monthly_totals(evs, {evs[0].event_id: "确认"})[0]["confirmed"] == 50
    assert monthly_totals(evs, {evs[0].event_id: "确认"})[0]["due"] == 50


def test_per_day_penalties_are_capped():
    recs = [rec(1, first_contact_at=datetime(2026, 3, 2, 11))]
    evs = events_for(scan(recs, now=datetime(2026, 9, 1)), {r["record_id"]: r for r in recs}, DEFAULT_RULES, {})
    per_day = [e for e in evs if e.rule_id == "P2" and "第" in e.why]
    assert len(per_day) == 30 and len({e.event_id for e in per_day}) == 30
