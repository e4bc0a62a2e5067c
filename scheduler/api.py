"""What the CLI calls: scan, send, sheet providers and the demo chain."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from complaint_core.gcpause import paused_gc
from complaint_core.merged.model import Block, ChartSpec, Column, SheetData
from complaint_core.overdue import KIND_ZH, STATE_ZH, flagged, scan
from complaint_core.penalties import CONFIRM_CHOICES, PenaltyEvent, events_for, monthly_totals
from complaint_core.rules_book import DEFAULT, Rules, load_rules
from complaint_core.store.sched_tables import SCHED_TABLES, penalty_events, upgrade

from . import outbox as ob
from .escalate import queue_alerts_and_posts
from .idempotent import insert_missing
from .mail import digests
from .outbox import SendReport
from .transport import EmlFolderTransport

__all__ = ["ScanReport", "SendReport", "scan_once", "send_due", "sheet_providers", "demo_chain"]


@dataclass
class ScanReport:
    records: int = 0
    flagged: int = 0
    overdue: int = 0
    new_penalties: int = 0
    queued_mails: int = 0
    states: dict[str, int] = field(default_factory=dict)
    queued_posts: int = 0   # group robot posts (escalation alerts and the day's digests)


def ensure_tables(store: Any) -> None:
    SCHED_TABLES[0].metadata.create_all(store.engine, tables=list(SCHED_TABLES))
    upgrade(store.engine)   # a state.db from an older version gains the outbox's claim columns


def _memo(store: Any, key: Any, compute: Any) -> Any:
    # The renderer's store view shares results between the 汇总, 逾期 and 处罚 sheets of one
    # rewrite: the overdue scan of 100,000 complaints runs once, not once per sheet.
    return store.memo(key, compute) if hasattr(store, "memo") else compute()


def _live(store: Any) -> list[dict[str, Any]]:
    return _memo(store, "live", lambda: [r for r in store.current_records() if not r.get("deleted")])


def _items(store: Any, now: datetime, rules: Rules) -> list[Any]:
    return _memo(store, ("overdue", now, id(rules)), lambda: scan(_live(store), now=now, settings=rules.settings))


@paused_gc()   # 1,000,000 records make 4 million penalty items: see complaint_core/gcpause.py
def scan_once(store: Any, *, now: datetime, rules: Rules = DEFAULT, mail_transport: Any = None,
              robots: Sequence[Any] = ()) -> ScanReport:
    """Scan as of ``now``; new penalty events and the day's digests land in one transaction."""
    ensure_tables(store)
    recs = _live(store)
    items = scan(recs, now=now, settings=rules.settings)
    evs = events_for(items, {r["record_id"]: r for r in recs}, rules.penalties, rules.heads())
    states = Counter(i.state for i in items)
    figures = {"投诉": len(recs), "已逾期": states["overdue"], "即将到期": states["due_soon"]}
    mails = digests(items, rules, day=now.date(), figures=figures)
    rep = ScanReport(len(recs), len(flagged(items)), states["overdue"], states=dict(states))
    with store.begin() as c:
        have = {r[0] for r in c.execute(select(penalty_events.c.event_id))}
        new = []
        for e in evs:
            if e.event_id in have:
                continue   # rescanning never doubles a penalty
            have.add(e.event_id)
            new.append(dict(event_id=e.event_id, record_id=e.record_id, shop=e.shop, complaint_id=e.complaint_id,
                            rule_id=e.rule_id, kind=e.kind, day=e.day, person=e.person, dept=e.dept,
                            head=e.head, amount=e.amount, why=e.why, first_seen=now))
        # A scanner running at the same time may store some of these between our read and our
        # insert: those are skipped, not an error (see scheduler/idempotent.py).
        rep.new_penalties = insert_missing(c, penalty_events, penalty_events.c.event_id, new)
        rep.queued_mails = ob.queue(c, mails, now=now)
        more = queue_alerts_and_posts(c, recs, items, rules, robots, now=now, figures=figures)   # escalate.py
        rep.queued_mails, rep.queued_posts = rep.queued_mails + more.mails, more.posts
    if mail_transport is not None:
        ob.send_due(store, mail_transport, now=now)
    return rep


def send_due(store: Any, transport: Any, *, now: datetime, sender: str = "") -> SendReport:
    """Send what is due; ``sender`` (the config's mail.sender) is the From of every mail."""
    ensure_tables(store)
    return ob.send_due(store, transport, now=now, sender=sender)


def stored_events(store: Any) -> list[PenaltyEvent]:
    return _memo(store, "events", lambda: _stored_events(store))


def _stored_events(store: Any) -> list[PenaltyEvent]:
    with store.begin() as c:
        rows = c.execute(select(penalty_events).order_by(penalty_events.c.day, penalty_events.c.event_id))
        return [PenaltyEvent(r.event_id, r.record_id, r.shop or "", r.complaint_id or "", r.rule_id, r.kind, r.day,
                             r.person or "", r.dept or "", r.head or "", r.amount, r.why or "") for r in rows]


class _ConnStore:
    """Providers receive the renderer's connection; read the store through it."""

    def __init__(self, conn: Any) -> None:
        from complaint_core.store import Store
        self._conn = conn
        self._store = Store(conn.engine, str(conn.engine.url))
        self.engine = conn.engine

    def current_records(self) -> list[dict[str, Any]]:
        return self._store.current_records(self._conn)

    def manager_edits(self, sheet: str) -> dict[tuple, dict[str, Any]]:
        return self._store.manager_edits(sheet, self._conn)

    def begin(self) -> Any:
        from contextlib import nullcontext
        return nullcontext(self._conn)


def _as_store(x: Any) -> Any:
    return x if hasattr(x, "current_records") else _ConnStore(x)


def confirmations(store: Any) -> dict[str, str]:
    return {k[0]: v.get("confirm") or "" for k, v in store.manager_edits("处罚").items()}


def sheet_providers(rules: Rules = DEFAULT) -> list:
    def overdue_sheet(src: Any, now: datetime) -> list[SheetData]:
        store = _as_store(src)
        items = flagged(_items(store, now, rules))
        cols = [Column("complaint_id", "投诉编号", width=18), Column("shop", "门店", width=8),
                Column("kind", "时限"), Column("due", "截止时间", "datetime", 17), Column("state", "状态"),
                Column("late_h", "逾期（小时）", "float"), Column("person", "责任人"), Column("dept", "责任部门"),
                Column("why", "如何计算", width=60)]
        rows = [[i.complaint_id, i.shop, KIND_ZH[i.kind], i.due, STATE_ZH[i.state],
                 round(i.late.total_seconds() / 3600, 1), i.person, i.dept, i.why] for i in items]
        return [SheetData("逾期", cols, rows, note=f"截至 {now:%Y-%m-%d %H:%M} 的时限状态")]

    def penalty_sheet(src: Any, now: datetime) -> list[SheetData]:
        store = _as_store(src)
        evs = stored_events(store)
        conf = confirmations(store)
        cols = [Column("event_id", "事件编号", width=26), Column("month", "月份"), Column("rule", "规则"),
                Column("complaint_id", "投诉编号", width=18), Column("person", "责任人"),
                Column("head", "部门负责人"), Column("amount", "金额", "money"), Column("why", "原因", width=40),
                Column("confirm", "处罚确认", choices=CONFIRM_CHOICES, manager_owned=True)]
        rows = [[e.event_id, e.month, e.rule_id, e.complaint_id, e.person, e.head, e.amount, e.why,
                 conf.get(e.event_id, "")] for e in evs]
        return [SheetData("处罚", cols, rows, key_columns=("event_id",),
                          note="处罚确认：确认 / 免除 / 申诉；免除和申诉不计入应处罚金额")]

    def summary_sheet(src: Any, now: datetime) -> list[SheetData]:
        return [summary(_as_store(src), now, rules)]

    return [summary_sheet, overdue_sheet, penalty_sheet]


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


def summary(store: Any, now: datetime, rules: Rules) -> SheetData:
    recs = _live(store)
    items = _items(store, now, rules)
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
    totals = monthly_totals(stored_events(store), confirmations(store))
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


def demo_chain(state_url: str, merged_out: str | Path, *, now: datetime, outbox_dir: str | Path,
               rules_path: str | Path | None = None) -> dict[str, Any]:
    from complaint_core.merged.render import render_merged
    from complaint_core.store import open_store

    rules = load_rules(rules_path) if rules_path else DEFAULT
    store = open_store(state_url)
    rep = scan_once(store, now=now, rules=rules)
    sent = send_due(store, EmlFolderTransport(Path(outbox_dir)), now=now)
    render_merged(store, Path(merged_out), now=now, providers=sheet_providers(rules))
    return {"scan": rep, "mail": sent}
