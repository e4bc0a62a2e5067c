"""Suggested steps fit the row; fills touch only empty cells; the engine is a pure function."""

import copy
from datetime import datetime, timedelta

from complaint_core.model import ComplaintTable, Invalid, SourceRow
from complaint_core.playbook import DEFAULT_PLAYBOOK
from complaint_core.schema import KEYS
from complaint_core.settings import DEFAULTS
from complaint_core.suggest import MAX_CHARS, fills_for_table, suggest_steps
from tests.support.workbooks import NOW, sample_rows

COLUMNS = {k: i for i, k in enumerate(KEYS)}


def steps(**row) -> str:
    return suggest_steps({"received_at": NOW - timedelta(hours=1)} | row, DEFAULT_PLAYBOOK, now=NOW)


def table(rows, shop="SH01") -> ComplaintTable:
    return ComplaintTable(path=None, sheet="投诉登记", header_row=1, first_col=0, columns=COLUMNS,
                          extra_columns={}, shop_code=shop,
                          rows=[SourceRow(row=i + 2, values={k: r.get(k) for k in KEYS})
                                for i, r in enumerate(rows)])


def test_angry_customer_wanting_a_refund():
    text = steps(customer_mood="愤怒", customer_request="退款")
    assert text.startswith("1. ") and "电话联系客户" in text.splitlines()[0]
    assert "移情法" in text and "退款会在" in text and "争辩" in text
    assert "三明治法" not in text and "预警上报" not in text


def test_not_valid_gets_the_sandwich_and_no_contact_nag_once_closed():
    text = steps(validity="不成立", status="不成立", resolution_plan="已解释保修条款")
    assert "三明治法" in text and "前电话联系客户" not in text


def test_severe_and_connected_customers_escalate_first():
    severe = steps(severity="严重")
    lines = severe.splitlines()
    escalate = next(i for i, line in enumerate(lines) if "预警上报" in line)
    assert escalate < next(i for i, line in enumerate(lines) if "联系客户" in line)
    assert "在事实澄清以前便承担责任" in severe
    assert "预警上报" in steps(customer_type="有社会背景型")
    assert "上报" not in steps(severity="一般", customer_type="一般")


def test_deadline_actions_follow_the_row_state():
    overdue = suggest_steps({"received_at": NOW - timedelta(hours=3)}, now=NOW)
    assert "已超时，立即处理" in overdue and "向客户反馈" in overdue
    resolved = steps(first_contact_at=NOW - timedelta(minutes=30), resolved_at=NOW, status="已解决")
    assert "前回访客户" in resolved and "前电话联系客户" not in resolved and "前向客户反馈" not in resolved
    # the why of the deadlines lives on 使用说明, not repeated in every cell
    assert "2小时内相关责任人必须与客户进行电话联系" not in resolved


def test_every_suggestion_fits_in_a_cell():
    worst = {"received_at": NOW - timedelta(days=9), "resolved_at": NOW - timedelta(days=5),
             "customer_mood": "愤怒", "customer_request": "赔偿补偿", "customer_type": "有社会背景型",
             "severity": "严重", "validity": "不成立", "root_cause": "客户原因", "status": "已解决"}
    assert len(suggest_steps(worst, now=NOW, settings=DEFAULTS.with_(business_hours=True))) <= MAX_CHARS
    assert max(len(suggest_steps(r, now=NOW)) for r in sample_rows(300, seed=4, now=NOW)) <= MAX_CHARS


def test_fills_only_empty_cells_and_never_overwrite():
    rows = sample_rows(4, seed=6, now=NOW)
    for r in rows:
        for key in ("complaint_id", "shop", "suggested_steps", "contact_due", "feedback_due", "followup_due"):
            r[key] = None
    rows[1].update(complaint_id="SH01-20261101-001", shop="SH09", suggested_steps="店长写的",
                   contact_due=datetime(2026, 1, 1), feedback_due=datetime(2026, 1, 2),
                   followup_due=datetime(2026, 1, 3))
    rows[2]["received_at"] = Invalid("上周", "bad_datetime")
    rows[3]["received_at"] = None
    rows[0]["resolved_at"] = None
    before = copy.deepcopy(rows)
    fills = {f.row: f.values for f in fills_for_table(table(rows), DEFAULT_PLAYBOOK, now=NOW)}
    assert rows == before                                   # input untouched
    assert 3 not in fills                                    # a fully typed row gets nothing
    first = fills[2]
    assert first["shop"] == "SH01" and first["complaint_id"].startswith("SH01-")
    assert first["contact_due"] == rows[0]["received_at"] + timedelta(hours=2)
    assert "followup_due" not in first                       # unresolved: no follow-up deadline
    for bad in (4, 5):                                       # no usable receipt: id and shop only
        assert set(fills[bad]) == {"complaint_id", "shop"}
    ids = [v["complaint_id"] for v in fills.values()]
    assert len(set(ids)) == len(ids) and "SH01-20261101-001" not in ids


def test_fills_are_a_pure_function_of_row_playbook_settings_and_now():
    rows = sample_rows(20, seed=8, now=NOW)
    for r in rows:
        r["suggested_steps"] = r["contact_due"] = None
    a = fills_for_table(table(rows), DEFAULT_PLAYBOOK, now=NOW)
    b = fills_for_table(table(rows), DEFAULT_PLAYBOOK, now=NOW)
    assert a == b and a
    later = fills_for_table(table(rows), DEFAULT_PLAYBOOK, now=NOW + timedelta(days=30))
    assert [f.values.get("contact_due") for f in later] == [f.values.get("contact_due") for f in a]
    biz = fills_for_table(table(rows), DEFAULT_PLAYBOOK, now=NOW, settings=DEFAULTS.with_(business_hours=True))
    assert biz != a      # business hours move the due times the suggestion names


def test_ids_continue_per_shop_and_day_and_never_collide():
    from complaint_core.ids import next_ids

    day = datetime(2026, 11, 19, 9, 0)
    existing = ["SH01-20261119-002", "SH02-20261119-005", "SH01-20261119-003", "SH01-20261118-009", "乱写的编号"]
    got = next_ids("SH01", [day, datetime(2026, 11, 18, 23, 0), day], existing)
    assert got == ["SH01-20261119-004", "SH01-20261118-010", "SH01-20261119-005"]
    assert next_ids("SH02", [day], existing) == ["SH02-20261119-006"]
    # A hand-typed id that matches a future sequence number is skipped, not reused.
    assert next_ids("SH03", [day, day], ["SH03-20261119-001"]) == ["SH03-20261119-002", "SH03-20261119-003"]
    assert next_ids("SH04", [day] * 1000, [])[-1] == "SH04-20261119-1000"


def test_english_steps_use_the_english_advice_and_reasons():
    row = {"received_at": NOW - timedelta(hours=3), "customer_mood": "愤怒", "customer_request": "退款"}
    text = suggest_steps(row, DEFAULT_PLAYBOOK, now=NOW, lang="en")
    assert "overdue" in text and "Empathy" in text and "cannot arrive at once" in text and "Say:" in text
    # only the sheet's own name stays Chinese: that is what the tab is called
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in text.replace("处理手册", ""))
    # A shop's own rule without English text falls back to its Chinese advice.
    from complaint_core.playbook import Playbook, Rule
    own = Playbook((Rule("技巧", None, frozenset(), "店长回电", "店长亲自回电"),))
    assert "店长亲自回电" in suggest_steps(row, own, now=NOW, lang="en")
