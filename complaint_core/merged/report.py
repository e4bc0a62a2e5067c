"""The sheets a scan's results fill: 逾期, 处罚 and 汇总, pure functions of the store and ``now``.

They live in the core beside the store's own sheets so that every path that writes the merged
workbook (``sync --once``, the daemon, ``scan``, ``run``, the demo) writes all of them: a sheet
left out would be rendered empty, and a manager's 处罚确认 on it would never be read back.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from ..overdue import KIND_ZH, STATE_ZH, OverdueItem, flagged, scan
from ..penalties import CONFIRM_CHOICES, monthly_totals
from ..store.db import View
from .model import Block, ChartSpec, Column, SheetData


def overdue_items(view: View, now: datetime) -> list[OverdueItem]:
    """Every deadline of every live complaint with its state as of ``now`` (once per render)."""
    # each record carries its own shop's settings and the deadlines stored for its version
    return view.memo(("overdue", now), lambda: scan(view.live_records(), now=now))


def overdue_sheet(view: View, now: datetime) -> SheetData:
    items = flagged(overdue_items(view, now))
    cols = [Column("complaint_id", "投诉编号", width=18), Column("shop", "门店", width=8),
            Column("kind", "时限"), Column("due", "截止时间", "datetime", 17), Column("state", "状态"),
            Column("late_h", "逾期（小时）", "float"), Column("person", "责任人"), Column("dept", "责任部门"),
            Column("why", "如何计算", width=60)]
    rows = [[i.complaint_id, i.shop, KIND_ZH[i.kind], i.due, STATE_ZH[i.state],
             round(i.late.total_seconds() / 3600, 1), i.person, i.dept, i.why] for i in items]
    return SheetData("逾期", cols, rows, note=f"截至 {now:%Y-%m-%d %H:%M} 的时限状态")


def penalty_sheet(view: View, now: datetime) -> SheetData:
    conf = view.confirmations()
    cols = [Column("event_id", "事件编号", width=26), Column("month", "月份"), Column("rule", "规则"),
            Column("complaint_id", "投诉编号", width=18), Column("person", "责任人"),
            Column("head", "部门负责人"), Column("amount", "金额", "money"), Column("why", "原因", width=40),
            Column("confirm", "处罚确认", choices=CONFIRM_CHOICES, manager_owned=True)]
    rows = [[e.event_id, e.month, e.rule_id, e.complaint_id, e.person, e.head, e.amount, e.why,
             conf.get(e.event_id, "")] for e in view.penalty_events()]
    return SheetData("处罚", cols, rows, key_columns=("event_id",),
                     note="处罚确认：确认 / 免除 / 申诉；免除和申诉不计入应处罚金额")


def _count_block(title: str, counter: Counter, anchor: str) -> Block:
    rows = [[k or "（空）", v] for k, v in sorted(counter.items(), key=lambda kv: str(kv[0]))]
    charts = [ChartSpec("column", title, 0, (1,), 0, max(len(rows) - 1, 0), anchor)] if rows else []
    return Block(title, [Column("k", "项目"), Column("n", "数量", "int")], rows, charts)


RESOLUTION_BUCKETS = ("≤1天", "1-3天", "3-7天", ">7天", "未解决")


def resolution_buckets(recs: list[dict[str, Any]], *, now: datetime) -> list[list[Any]]:
    """Time from 受理 to 解决 in the buckets managers read against the 3-day feedback promise.

    Rows: [bucket, count, share]. A complaint counts as 未解决 when it has no resolved time yet
    as of ``now`` (a later one, from a scan with an earlier --now, is not resolved yet); one
    judged 不成立 is closed without a resolution and left out, as is a resolved time before
    the received time (a data error the 校验问题 sheet reports).
    """
    counts = dict.fromkeys(RESOLUTION_BUCKETS, 0)
    for r in recs:
        if r.get("status") == "不成立" or r.get("validity") == "不成立":
            continue
        got, done = r.get("received_at"), r.get("resolved_at")
        if not isinstance(got, datetime):
            continue
        if not isinstance(done, datetime) or done > now:
            counts["未解决"] += 1
            continue
        days = (done - got).total_seconds() / 86400
        if days < 0:
            continue
        bucket = "≤1天" if days <= 1 else "1-3天" if days <= 3 else "3-7天" if days <= 7 else ">7天"
        counts[bucket] += 1
    total = sum(counts.values())
    return [[k, v, round(v / total, 3) if total else 0.0] for k, v in counts.items()]


def summary_sheet(view: View, now: datetime) -> SheetData:
    recs = view.live_records()
    items = overdue_items(view, now)
    n = len(recs)
    by = {k: Counter(str(r.get(k) or "") for r in recs)
          for k in ("category", "channel", "shop", "root_cause", "status")}
    months = Counter(f"{r['received_at']:%Y-%m}" for r in recs if isinstance(r.get("received_at"), datetime))
    contact_ok = sum(1 for i in items if i.kind == "contact" and i.state == "done")
    feedback_ok = sum(1 for i in items if i.kind == "feedback" and i.state == "done")
    hours = [h for h in ((r["resolved_at"] - r["received_at"]).total_seconds() / 3600 for r in recs
                         if isinstance(r.get("resolved_at"), datetime) and isinstance(r.get("received_at"), datetime))
             if h >= 0]   # resolved before received is a typo (校验问题 lists it), not a fast fix
    followed = sum(1 for r in recs if isinstance(r.get("followup_at"), datetime))
    satisfied = sum(1 for r in recs if r.get("satisfaction") in ("满意", "非常满意"))
    ids = Counter(str(r.get("customer_phone") or r.get("customer_name") or "") for r in recs)
    repeat = sum(1 for k, v in ids.items() if k and v > 1)

    def pct(a: int) -> float:
        return round(a / n, 3) if n else 0.0

    kpi = Block("关键指标", [Column("k", "指标", width=30), Column("v", "数值", "float")], [
        ["投诉总数", n], ["平均解决用时（小时）", round(sum(hours) / len(hours), 1) if hours else 0.0],
        ["已回访数", followed], ["满意数（满意/非常满意）", satisfied], ["重复投诉客户数", repeat]])
    # the two promises of the handling rules, shown as 76.0%, not 0.76
    promise = Block("时限达成率", [Column("k", "承诺", width=30), Column("v", "达成率", "percent")], [
        ["2小时内联系占比", pct(contact_ok)], ["3日内反馈占比", pct(feedback_ok)]])
    ttr = Block("解决用时分布", [Column("k", "用时（受理到解决）", width=30), Column("n", "数量", "int"),
                                Column("p", "占比", "percent")], resolution_buckets(recs, now=now),
                [ChartSpec("column", "解决用时分布", 0, (1,), 0, len(RESOLUTION_BUCKETS) - 1, "P40")],
                note="不含判定不成立的投诉；未解决 = 截至此时还没有解决时间")
    totals = monthly_totals(view.penalty_events(), view.confirmations())
    per_person = Counter()
    for t in totals:
        per_person[t["person"]] += t["due"]
    pen = Block("处罚（按人，不含免除和申诉）", [Column("k", "责任人"), Column("v", "金额", "money")],
                [[k, round(v, 2)] for k, v in sorted(per_person.items())])
    if pen.rows:
        pen.charts.append(ChartSpec("bar", "处罚金额（按人）", 0, (1,), 0, len(pen.rows) - 1, "H40"))
    est = Block("估算（来源：处理手册材料 seed 004/001，仅为估计）",
                [Column("k", "估算", width=40), Column("v", "数值", "float")], [
                    ["沉默的不满客户（约4%的人会投诉：投诉数÷4%）", round(n / 0.04)],
                    ["不满客户口碑传播人数（每人告诉10–20人，取下限10）", round(n / 0.04 * 10)],
                    ["投诉已解决客户回头率（54%）× 已解决数", round(len(hours) * 0.54, 1)],
                    ["快速解决客户回头率（82%）× 已解决数", round(len(hours) * 0.82, 1)]],
                note="估算，依据培训材料中的调查数字，非本店实测")
    blocks = [kpi, promise, ttr, _count_block("按月份", months, "H2"), _count_block("按类别", by["category"], "H18"),
              _count_block("按渠道", by["channel"], "P2"), _count_block("按门店", by["shop"], "P18"),
              _count_block("按原因", by["root_cause"], "X2"), _count_block("按状态", by["status"], "X18"), pen, est]
    return SheetData("汇总", blocks=blocks, as_table=False, note=f"截至 {now:%Y-%m-%d %H:%M}")
