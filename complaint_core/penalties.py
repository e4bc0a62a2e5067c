"""Penalty events from breaches, with ids that make rescans idempotent.

The handling rules say the person who caused the loss or delayed handling is penalised, with
the department head (延误追究). Each event id is derived from the complaint, the rule and the
deadline kind (and the day, for per-day rules), so scanning twice yields the same ids and the
store's unique key keeps one row per event.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .gcpause import paused_gc
from .overdue import KIND_ZH, OverdueItem

CONFIRM_CHOICES = ("确认", "免除", "申诉")


@dataclass(frozen=True, slots=True)
class PenaltyRule:
    rule_id: str
    kind: str                  # contact | feedback | followup | loss
    per_event: float = 0.0     # yuan once per breach
    per_day: float = 0.0       # yuan per started day late
    loss_share: float = 0.0    # share of loss_amount (kind "loss")
    description: str = ""
    max_days: int = 30         # per-day penalties stop after this many days (one month's delay)


DEFAULT_RULES: tuple[PenaltyRule, ...] = (
    PenaltyRule("P1", "contact", per_event=50, description="2小时内未电话联系客户"),
    PenaltyRule("P2", "feedback", per_event=50, per_day=20, description="3日内未反馈处理进度或结果"),
    PenaltyRule("P3", "followup", per_event=30, description="解决后未按时回访"),
    PenaltyRule("P4", "loss", loss_share=0.1, description="造成损失，按损失金额比例处罚"),
)


@dataclass(frozen=True, slots=True)
class PenaltyEvent:
    event_id: str
    record_id: str
    shop: str
    complaint_id: str
    rule_id: str
    kind: str
    day: date                  # the day the event falls on (its month is the ledger month)
    person: str
    dept: str
    head: str
    amount: float
    why: str

    @property
    def month(self) -> str:
        return f"{self.day:%Y-%m}"


def event_id(record_id: str, rule_id: str, kind: str, day: date | None = None) -> str:
    raw = "\x1f".join([record_id, rule_id, kind, day.isoformat() if day else ""])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


@paused_gc()   # up to 30 per-day events per late item; see gcpause
def events_for(items: Iterable[OverdueItem], records: dict[str, dict[str, Any]],
               rules: Iterable[PenaltyRule], heads: dict[str, str]) -> list[PenaltyEvent]:
    """Penalty events for breached deadlines and losses; ``heads`` maps department -> head."""
    rules = list(rules)
    out: list[PenaltyEvent] = []
    for it in items:
        if it.state not in ("overdue", "done_late") or not it.person:
            continue
        for r in rules:
            if r.kind != it.kind:
                continue
            head = heads.get(it.dept, "")
            if r.per_event:
                day = it.due.date()
                out.append(PenaltyEvent(event_id(it.record_id, r.rule_id, it.kind), it.record_id, it.shop,
                                        it.complaint_id, r.rule_id, it.kind, day, it.person, it.dept, head,
                                        round(r.per_event, 2), f"{KIND_ZH[it.kind]}逾期：{r.description}"))
            for n in range(1, min(it.late_days, r.max_days) + 1 if r.per_day else 1):
                day = (it.due + timedelta(days=n - 1)).date()
                out.append(PenaltyEvent(event_id(it.record_id, r.rule_id, it.kind, day), it.record_id, it.shop,
                                        it.complaint_id, r.rule_id, it.kind, day, it.person, it.dept, head,
                                        round(r.per_day, 2), f"{KIND_ZH[it.kind]}逾期第{n}天：每天{r.per_day:g}元"))
    for rid, rec in records.items():
        loss = rec.get("loss_amount")
        person = rec.get("responsible_person")
        if rec.get("deleted") or rec.get("validity") != "成立" or not person:
            continue
        if not isinstance(loss, (int, float)) or loss <= 0:
            continue
        when = rec.get("resolved_at") or rec.get("received_at")
        if not isinstance(when, datetime):
            continue
        dept = str(rec.get("responsible_dept") or "")
        for r in rules:
            if r.kind == "loss" and r.loss_share:
                out.append(PenaltyEvent(event_id(rid, r.rule_id, "loss"), rid, str(rec.get("shop") or ""),
                                        str(rec.get("complaint_id") or ""), r.rule_id, "loss", when.date(),
                                        str(person), dept, heads.get(dept, ""), round(loss * r.loss_share, 2),
                                        f"损失 {loss:g} 元 × {r.loss_share:.0%}：{r.description}"))
    return out


def monthly_totals(events: Iterable[PenaltyEvent], confirmations: dict[str, str]) -> list[dict[str, Any]]:
    """Per person and month: confirmed, pending (blank), appealed and waived amounts.

    A manager's 免除 removes the amount from what is owed and 申诉 holds it aside until decided;
    only 确认 and not-yet-reviewed lines count towards the amount due (待确认 shown separately).
    """
    acc: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in events:
        state = confirmations.get(e.event_id, "") or ""
        bucket = {"确认": "confirmed", "免除": "waived", "申诉": "appealed"}.get(state, "pending")
        acc[(e.person, e.month)][bucket] += e.amount
    rows = []
    for (person, month), b in sorted(acc.items()):
        rows.append({"person": person, "month": month, "confirmed": round(b["confirmed"], 2),
                     "pending": round(b["pending"], 2), "appealed": round(b["appealed"], 2),
                     "waived": round(b["waived"], 2), "due": round(b["confirmed"] + b["pending"], 2)})
    return rows
