"""Contact / feedback / follow-up deadlines, plain and in business hours, with their reasons."""

from datetime import datetime, timedelta

from complaint_core.deadlines import deadlines
from complaint_core.model import Invalid
from complaint_core.settings import DEFAULTS

RECEIVED = datetime(2026, 9, 30, 17, 30)


def test_plain_clock_deadlines_match_the_rules():
    due = deadlines({"received_at": RECEIVED, "resolved_at": datetime(2026, 10, 2, 11, 0)})
    assert due.contact_due == RECEIVED + timedelta(hours=2)
    assert due.feedback_due == RECEIVED + timedelta(days=3)
    assert due.followup_due == datetime(2026, 10, 5, 11, 0)
    assert "2小时内相关责任人必须与客户进行电话联系" in due.why_zh
    assert "3日内必须向客户反馈处理进度或结果" in due.why_zh and "自然时间" in due.why_zh
    assert "2 h" in due.why_en and "Clock time" in due.why_en


def test_no_receipt_or_no_resolution_means_no_deadline():
    due = deadlines({"received_at": Invalid("昨天", "bad_datetime"), "resolved_at": None})
    assert (due.contact_due, due.feedback_due, due.followup_due) == (None, None, None)
    assert deadlines({"received_at": RECEIVED}).followup_due is None


def test_configured_limits_change_deadlines_and_reasons():
    s = DEFAULTS.with_(contact_hours=4, feedback_days=5, followup_days=7)
    due = deadlines({"received_at": RECEIVED, "resolved_at": RECEIVED}, s)
    assert due.contact_due == RECEIVED + timedelta(hours=4)
    assert due.feedback_due == RECEIVED + timedelta(days=5)
    assert due.followup_due == RECEIVED + timedelta(days=7)
    assert "受理后4小时内" in due.why_zh and "解决后7日内" in due.why_zh


def test_business_hours_over_national_day_2026():
    s = DEFAULTS.with_(business_hours=True)
    due = deadlines({"received_at": RECEIVED, "resolved_at": datetime(2026, 10, 9, 16, 0)}, s)
    assert due.contact_due == datetime(2026, 10, 8, 10, 30)    # 30 min on 30 Sep, 90 on 8 Oct
    assert due.feedback_due == datetime(2026, 10, 10, 17, 30)  # 8, 9, 10 Oct (调休 Saturday)
    assert due.followup_due == datetime(2026, 10, 13, 16, 0)   # Sat 10 (调休), Mon 12, Tue 13
    assert "工作时间" in due.why_zh and "调休" in due.why_zh and "09:00–18:00" in due.why_zh
    assert "Business hours" in due.why_en
