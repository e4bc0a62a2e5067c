"""Overdue states computed as of a passed-in clock, business hours and holidays included."""

from __future__ import annotations

from datetime import datetime, timedelta

from complaint_core.overdue import flagged, scan, scan_record
from complaint_core.settings import DEFAULTS


def rec(**kw):
    base = {"record_id": "A\x1f1", "shop": "A", "complaint_id": "A-1", "received_at": datetime(2026, 3, 2, 10, 0),
            "responsible_person": "张三", "responsible_dept": "门店", "validity": "成立"}
    base.update(kw)
    return base


def states(items):
    return {i.kind: i.state for i in items}


def test_contact_states_along_the_clock():
    r = rec()
    assert states(scan_record(r, now=datetime(2026, 3, 2, 10, 30)))["contact"] == "ok"
    assert states(scan_record(r, now=datetime(2026, 3, 2, 11, 30)))["contact"] == "due_soon"
    late = scan_record(r, now=datetime(2026, 3, 2, 15, 0))
    assert states(late)["contact"] == "overdue"
    c = next(i for i in late if i.kind == "contact")
    assert c.late == timedelta(hours=3) and "2026-03-02 12:00" in c.why
    done_late = scan_record(rec(first_contact_at=datetime(2026, 3, 2, 12, 30)), now=datetime(2026, 3, 9))
    assert states(done_late)["contact"] == "done_late"
    assert states(scan_record(rec(first_contact_at=datetime(2026, 3, 2, 11)), now=datetime(2026, 3, 9)))[
        "contact"] == "done"


def test_catch_up_after_machine_off_counts_days_late():
    # Machine off for a week: scanning at the real clock finds the feedback 4 days late.
    items = scan_record(rec(), now=datetime(2026, 3, 9, 10, 0))
    fb = next(i for i in items if i.kind == "feedback")
    assert fb.state == "overdue" and fb.late_days == 4


def test_holiday_eve_21h_business_hours():
    # Received 21:00 on 2025-09-30, the eve of National Day: with business hours and holidays,
    # the 2-hour contact deadline falls on the first working day after the holiday, 2025-10-09 11:00.
    s = DEFAULTS.with_(business_hours=True)
    items = scan_record(rec(received_at=datetime(2025, 9, 30, 21, 0)), now=datetime(2025, 10, 5), settings=s)
    c = next(i for i in items if i.kind == "contact")
    assert c.due == datetime(2025, 10, 9, 11, 0) and c.state == "ok"
    assert "工作时间" in c.why


def test_not_valid_and_deleted_have_no_deadlines_and_followup_needs_resolution():
    assert scan_record(rec(validity="不成立"), now=datetime(2026, 4, 1)) == []
    assert scan_record(rec(deleted=True), now=datetime(2026, 4, 1)) == []
    kinds = {i.kind for i in scan_record(rec(), now=datetime(2026, 4, 1))}
    assert kinds == {"contact", "feedback"}
    kinds = {i.kind for i in scan_record(rec(resolved_at=datetime(2026, 3, 3)), now=datetime(2026, 4, 1))}
    assert "followup" in kinds


def test_flagged_hand_count():
    recs = [rec(record_id=f"A\x1f{n}", complaint_id=f"A-{n}",
                received_at=datetime(2026, 3, 2, 8 + n, 0)) for n in range(4)]
    items = scan(recs, now=datetime(2026, 3, 2, 11, 30))
    # contact due 10:00, 11:00, 12:00, 13:00 -> overdue, overdue, due_soon, ok
    assert [i.state for i in items if i.kind == "contact"] == ["overdue", "overdue", "due_soon", "ok"]
    assert len([i for i in flagged(items) if i.kind == "contact"]) == 3
