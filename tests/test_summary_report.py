"""汇总 estimates against a hand count, the improvement part, the case book, harassment counted
apart, and no internal words in anything a person reads."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from complaint_core.merged.render import build_sheets, render_merged
from complaint_core.store import open_store
from tests.test_scheduler_sheets import put

NOW = datetime(2026, 3, 8, 11, 0)
FEB, MAR = datetime(2026, 2, 20, 9, 0), datetime(2026, 3, 1, 9, 0)


def c(cid, received, *, took=None, **kw):
    v = {"complaint_id": cid, "shop": "A", "received_at": received, "received_by": "李娜", "channel": "电话",
         "customer_name": f"客户{cid}", "customer_phone": f"1390000000{cid[-1]}", "category": "商品质量",
         "description": "用了三天就坏了", "validity": "成立", "status": "处理中", "subject": "冰箱"}
    if took is not None:
        v.update(resolved_at=received + took, status="已解决", resolution_plan="更换新品")
    v.update(kw)
    return v


RECORDS = [
    c("A-0", FEB, took=timedelta(hours=2), subject="电饭煲", customer_name="王伟", customer_phone="13800138000",
      status="已回访", followup_at=FEB + timedelta(days=1), satisfaction="非常满意", root_cause="员工原因",
      resolution_plan="当场更换新品并赠送内胆"),
    c("A-1", MAR, took=timedelta(hours=30), subject="电饭煲", customer_name="王先生", customer_phone="13800138000",
      satisfaction="满意", root_cause="企业原因", resolution_plan="退款"),
    c("A-2", FEB + timedelta(days=5), root_cause="外部原因"),                       # not resolved
    c("A-3", FEB, subject="电饭煲", validity="不成立", status="不成立", resolution_plan="已解释保修条款"),
    c("A-4", MAR, category="骚扰来电", customer_name="未知", description="胡说八道", validity=None),
    c("A-5", MAR, took=timedelta(hours=24), category="服务态度", satisfaction="一般", root_cause="员工原因",
      resolution_plan="道歉并培训店员"),                                              # exactly one day: quick
    c("A-6", MAR, took=NOW - MAR + timedelta(hours=1)),                             # resolved after now
]


@pytest.fixture(scope="module")
def sheets(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('s') / 'state.db'}"
    put(url, RECORDS)
    return {s.name: s for s in build_sheets(open_store(url), NOW)}, url


def block(sheet, title):
    return next(b for b in sheet.blocks if b.title.startswith(title))


def test_estimates_against_a_hand_count(sheets):
    est = {r[0]: (r[1], r[2]) for r in block(sheets[0]["汇总"], "估算").rows}
    # counted, A-6 (A-3 不成立 and the harassment call A-4 are left out)
    assert est["计入估算的投诉（不含不成立和骚扰来电）"][0] == 5
    assert est["不满意客户估计数（投诉数 ÷ 4%）"][0] == 125                      # 5 / 0.04
    assert est["听到负面口碑的人数估计（不满意客户估计数 × 11）"][0] == 1375       # one survey: 11-15, low end
    # within a day: A-0 (2 h) and A-5 (24 h); later: A-1 (30 h); not yet: A-2 and A-6 (after now)
    assert est["1天内解决的投诉 2 件 × 82% 会再来"][0] == 1.6                      # 1.64
    assert est["超过1天解决的投诉 1 件 × 54% 会再来"][0] == 0.5
    assert est["尚未解决的投诉 2 件 × 19% 会再来"][0] == 0.4                       # 0.38
    assert est["预计会再来的投诉客户合计"][0] == 2.6                               # 1.64 + 0.54 + 0.38
    sources = {s for _v, s in est.values()}
    assert "美国消费者协会调查统计（培训材料《顾客投诉和补救性服务讲义》引用）" in sources


def test_harassment_is_counted_apart(sheets):
    kpi = dict(block(sheets[0]["汇总"], "关键指标").rows)
    assert kpi["投诉总数（不含骚扰来电）"] == 6 and kpi["骚扰来电（单独统计，不计入投诉）"] == 1
    assert kpi["其中判定不成立"] == 1
    assert "骚扰来电" not in dict(block(sheets[0]["汇总"], "按类别").rows)
    assert not [r for r in sheets[0]["逾期"].rows if r[0] == "A-4"]


def test_improvement_part_repeats_and_causes_by_month(sheets):
    s = sheets[0]["汇总"]
    # 冰箱; 电饭煲: and A-3 (judged 不成立, still a signal); most first, then by name
    assert block(s, "改进：重复被投诉的对象").rows == [["冰箱", 3], ["电饭煲", 3]]
    # the same phone is the same customer, however the clerk wrote the name
    assert block(s, "改进：重复投诉的客户").rows == [["王伟（13800138000）", 2]]
    causes = block(s, "改进：每月投诉原因")
    assert [c.header for c in causes.columns] == ["月份", "员工原因", "企业原因", "外部原因", "客户原因", "待查", "未填"]
    # Feb: A-0 员工, A-2 外部, A-3 未填; Mar: A-1 企业, A-5 员工, A-6 未填 (A-4 harassment out)
    assert causes.rows == [["2026-02", 1, 0, 1, 0, 0, 1], ["2026-03", 1, 1, 0, 0, 0, 1]]
    assert causes.charts and causes.charts[0].series_names[0] == "员工原因"


def test_case_book_lists_resolved_complaints_by_category_best_first(sheets):
    book = sheets[0]["案例手册"]
    cols = [c.key for c in book.columns]
    got = [(r[cols.index("complaint_id")], r[cols.index("category")], r[cols.index("satisfaction")],
            r[cols.index("plan")]) for r in book.rows]
    assert got == [("A-0", "商品质量", "非常满意", "当场更换新品并赠送内胆"), ("A-1", "商品质量", "满意", "退款"),
                   ("A-5", "服务态度", "一般", "道歉并培训店员")]


INTERNAL = [re.compile(p) for p in (
    r"(?i)\bseed\b", r"\b[TSWRECP]\d{1,2}\b", r"\bNone\b", r"\bTrue\b|\bFalse\b", r"\b[a-z]+_[a-z_]+\b",
    r"Traceback", r"\bnan\b")]


def internal_words(text: str) -> list[str]:
    return [m.group(0) for p in INTERNAL for m in p.finditer(text)]


def test_no_internal_words_in_what_people_read(sheets, tmp_path):
    from complaint_core.template import build_template
    from complaint_core.validate import validate_row
    from scheduler.api import scan_once
    from tests.test_situations import BASE, SITUATIONS

    url = sheets[1]
    out = tmp_path / "汇总.xlsx"
    scan_once(open_store(url), now=NOW)          # so 处罚 has lines (延误追究 for 李娜)
    render_merged(open_store(url), out, now=NOW)
    wb = load_workbook(out)
    cells = [str(v) for ws in wb.worksheets if ws.sheet_state == "visible"
             for row in ws.iter_rows(values_only=True) for v in row if isinstance(v, str)]
    tpl = load_workbook(build_template(tmp_path / "t.xlsx"))
    cells += [str(v) for name in ("处理手册", "使用说明") for row in tpl[name].iter_rows(values_only=True)
              for v in row if isinstance(v, str)]
    from complaint_core.findings import message
    from complaint_core.suggest import suggest_steps
    for _name, row, _must, _not in SITUATIONS:
        cells.append(suggest_steps(BASE | row, now=NOW))
        cells.append(suggest_steps(BASE | row, now=NOW, lang="en"))
        for key, code, fmt in validate_row(BASE | row, now=NOW):
            cells.append(message(code, key, **fmt))
    # the English column of 处理手册 names techniques like "7+1": fine; what must never appear are
    # our own words: seed, rule ids, Python names
    bad = {w for text in cells for w in internal_words(text)}
    assert not bad, bad
    # the check saw every part: suggestions, the case book, the ledger
    assert any("预警上报" in t for t in cells) and "当场更换新品并赠送内胆" in cells
    assert any(t.startswith("延误追究") for t in cells) and "待确认" in cells


def test_a_stale_unreviewed_loss_line_leaves_the_ledger_a_decided_one_stays(tmp_path):
    """A store scanned by a version that charged 10% of the loss (rule P4) keeps those rows:
    nobody reviewed → not listed, not counted; a manager's decision → listed with it."""
    from sqlalchemy import insert

    from complaint_core.store.sched_tables import penalty_events

    url = f"sqlite:///{tmp_path / 'state.db'}"
    put(url, [c("A-0", FEB, took=timedelta(hours=2), loss_amount=50_000, root_cause="外部原因",
                responsible_person="张强", responsible_dept="售后部")])
    store = open_store(url)
    old = [dict(event_id=f"old{i}", record_id="x", shop="A", complaint_id="A-0", rule_id="P4", kind="loss",
                day=FEB.date(), person="张强", dept="售后部", head="", amount=5000.0,
                why="损失 50000 元 × 10%", first_seen=NOW) for i in (1, 2)]
    with store.begin() as conn:
        conn.execute(insert(penalty_events), old)
    store.save_manager_edits("处罚", {("old2",): {"confirm": "免除"}}, now=NOW)
    got = {s.name: s for s in build_sheets(open_store(url), NOW)}
    listed = [(r[0], r[-2]) for r in got["处罚"].rows]
    assert listed == [("old2", "已免除")]
    assert block(got["汇总"], "处罚（按人）").rows == [["张强", 0, 0, 0]]


def test_repeats_counts_everything_and_lists_the_top_twenty():
    from complaint_core.merged.report import repeats

    recs = [{"customer_phone": f"1380000{i:04d}"} for i in range(25)] * 2 + [{"customer_phone": "13900000000"}]
    key = lambda r: r["customer_phone"]  # noqa: E731
    assert len(repeats(recs, key, top=None)) == 25 and len(repeats(recs, key)) == 20


def _counted_one_by_one(live: list[dict], now: datetime) -> dict:
    """汇总's counts as first written, complaint by complaint, with the report's own rules for
    buckets and return estimates (the oracle for the shop-at-a-time counting)."""
    from collections import Counter, defaultdict

    from complaint_core.merged import report
    from complaint_core.schema import HARASSMENT, ROOT_CAUSES

    n = harassment = followed = satisfied = invalid = hours_n = 0
    hours_sum = 0.0
    by = {k: Counter() for k in report._BY}
    months, buckets, handled = Counter(), Counter(), Counter()
    causes: dict = defaultdict(Counter)
    for r in live:
        if r.get("category") == HARASSMENT:
            harassment += 1
            continue
        n += 1
        for k in report._BY:
            by[k][str(r.get(k) or "")] += 1
        got, done = r.get("received_at"), r.get("resolved_at")
        if isinstance(got, datetime):
            month = f"{got.year}-{got.month:02d}"
            months[month] += 1
            cause = r.get("root_cause")
            causes[month][cause if cause in ROOT_CAUSES else "未填"] += 1
            if isinstance(done, datetime) and (h := (done - got).total_seconds() / 3600) >= 0:
                hours_sum += h
                hours_n += 1
        followed += isinstance(r.get("followup_at"), datetime)
        satisfied += r.get("satisfaction") in ("满意", "非常满意")
        invalid += r.get("validity") == "不成立" or r.get("status") == "不成立"
        if (b := report._bucket(r, now)) is not None:
            buckets[b] += 1
        if (h2 := report._handled(r, now)) is not None:
            handled[h2] += 1
    return {"n": n, "harassment": harassment, "followed": followed, "satisfied": satisfied, "invalid": invalid,
            "hours": (hours_sum, hours_n), "by": {k: list(v.items()) for k, v in by.items()},
            "months": list(months.items()), "buckets": list(buckets.items()), "handled": list(handled.items()),
            "causes": {m: list(v.items()) for m, v in causes.items()}}


_WHEN = st.one_of(st.none(), st.just("2026-02-30 9点"),
                  st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 4, 1)))
_RECORD = st.fixed_dictionaries({
    "category": st.sampled_from([None, "", "商品质量", "服务态度", "骚扰来电", 1, 1.0, True]),
    "channel": st.sampled_from([None, "电话", "门店", 0, False]),
    "shop": st.sampled_from(["A", "B", ""]),
    "root_cause": st.sampled_from([None, "员工操作", "商品质量", "其他原因", 3]),
    "status": st.sampled_from([None, "处理中", "已解决", "不成立"]),
    "validity": st.sampled_from([None, "成立", "不成立"]),
    "satisfaction": st.sampled_from([None, "满意", "非常满意", "不满意", 5]),
    "received_at": _WHEN, "resolved_at": _WHEN, "followup_at": _WHEN,
})


@settings(max_examples=300, deadline=None)
@given(st.lists(_RECORD, max_size=40), st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 5, 1)))
def test_a_shop_counted_at_once_counts_what_one_by_one_counts(live: list[dict], now: datetime) -> None:
    from complaint_core.merged.report import Summary

    acc = Summary(now)
    acc.add(live)
    got = {"n": acc.n, "harassment": acc.harassment, "followed": acc.followed, "satisfied": acc.satisfied,
           "invalid": acc.invalid, "hours": (acc.hours_sum, acc.hours_n),
           "by": {k: list(v.items()) for k, v in acc.by.items()}, "months": list(acc.months.items()),
           "buckets": list(acc.buckets.items()), "handled": list(acc.handled.items()),
           "causes": {m: list(v.items()) for m, v in acc.causes.items()}}
    assert got == _counted_one_by_one(live, now)


def test_penalty_events_left_null_by_an_older_version_read_as_empty_text(tmp_path):
    """Events are read by position for speed; a text column an older version left NULL still
    reads as "" (the 处罚 sheet and its monthly totals take them as text), the rest as stored."""
    from datetime import date

    from sqlalchemy import insert

    from complaint_core.penalties import PenaltyEvent
    from complaint_core.store.sched_tables import penalty_events

    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    rows = [dict(event_id="e2", record_id="r", shop=None, complaint_id=None, rule_id="P1", kind="late",
                 day=date(2026, 3, 2), person=None, dept=None, head=None, amount=20.0, why=None, first_seen=NOW),
            dict(event_id="e1", record_id="r", shop="A", complaint_id="A-1", rule_id="P1", kind="late",
                 day=date(2026, 3, 2), person="张强", dept="售后部", head="李经理", amount=20.5, why="超时",
                 first_seen=NOW)]
    with store.begin() as conn:
        conn.execute(insert(penalty_events), rows)
    assert store.penalty_events() == [
        PenaltyEvent("e1", "r", "A", "A-1", "P1", "late", date(2026, 3, 2), "张强", "售后部", "李经理", 20.5, "超时"),
        PenaltyEvent("e2", "r", "", "", "P1", "late", date(2026, 3, 2), "", "", "", 20.0, "")]
    assert [e.month for e in store.penalty_events()] == ["2026-03", "2026-03"]
