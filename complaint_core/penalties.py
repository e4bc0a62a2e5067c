"""Penalty events as the handling rules set them, with ids that make rescans idempotent.

seed 001 第五篇 step 7: "对直接责任者和部门主管要按照有关规定进行处罚，依照投诉所造成的损失大小，扣款责任人的一定
比例的工资或奖金；同时对不及时处理问题造成延误的责任人也要进行追究。" So:

- loss (损失): the directly responsible person AND the department head, a share of the wage or
  bonus base each has on the staff sheet (or a fixed amount), by loss tier (损失分级, rules
  workbook); only for a valid complaint whose cause is the staff's or the company's
  (员工原因 / 企业原因), never for 外部原因 or 客户原因, never for a harassment call.
- delay (延误追究): whoever let a contact, feedback or follow-up deadline pass, per breach and
  per started day late.

Each event id is derived from the complaint, the rule and the kind (and the day, for per-day
rules), so scanning twice yields the same ids and the store's unique key keeps one row per event.
A manager reviews each event on 处罚 (确认 / 免除 / 申诉); until then it is 待确认, counted apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .gcpause import paused_gc
from .overdue import KIND_ZH, OverdueItem

CONFIRM_CHOICES = ("确认", "免除", "申诉")
# What 处罚 and 汇总 call a line by its manager's decision (blank = nobody reviewed it yet).
STATE_ZH = {"确认": "已确认", "免除": "已免除", "申诉": "申诉中", "": "待确认"}
# Causes the texts hold the shop's people to account for (seed 004: 服务人员的原因, 服务企业的原因).
CHARGEABLE_CAUSES = ("员工原因", "企业原因")
LOSS_KINDS = {"loss": "直接责任人", "loss_head": "部门负责人"}


@dataclass(frozen=True, slots=True)
class PenaltyRule:
    """A delay rule (延误追究). Kind "loss" with ``loss_share`` is what earlier rules workbooks
    had: still read, no longer charged (the loss tiers replace it)."""

    rule_id: str
    kind: str                  # contact | feedback | followup (| loss: legacy, not charged)
    per_event: float = 0.0     # yuan once per breach
    per_day: float = 0.0       # yuan per started day late
    loss_share: float = 0.0    # legacy
    description: str = ""
    max_days: int = 30         # per-day penalties stop after this many days (one month's delay)


@dataclass(frozen=True, slots=True)
class LossTier:
    """One loss tier: min_loss < loss <= max_loss (None: no upper bound).

    Each role pays ``share`` of the base on their staff-sheet line; without a base (blank on
    the staff sheet, or the share is 0) the fixed amount applies.
    """

    tier_id: str
    min_loss: float
    max_loss: float | None
    person_share: float = 0.0
    person_fixed: float = 0.0
    head_share: float = 0.0
    head_fixed: float = 0.0
    description: str = ""

    def fits(self, loss: float) -> bool:
        return loss > self.min_loss and (self.max_loss is None or loss <= self.max_loss)

    def label(self) -> str:
        """How 处罚 names the tier: 损失500–5,000元, 损失5,000元以上."""
        if self.max_loss is None:
            return f"损失{self.min_loss:,.0f}元以上"
        return f"损失{self.min_loss:,.0f}–{self.max_loss:,.0f}元"


DEFAULT_RULES: tuple[PenaltyRule, ...] = (
    PenaltyRule("P1", "contact", per_event=50, description="2小时内未电话联系客户"),
    PenaltyRule("P2", "feedback", per_event=50, per_day=20, description="3日内未反馈处理进度或结果"),
    PenaltyRule("P3", "followup", per_event=30, description="解决后未按时回访"),
)

# The texts say "a share of wage or bonus by the size of the loss" and leave the shares to the
# shop; these are starting values a manager changes on the 损失分级 sheet.
DEFAULT_TIERS: tuple[LossTier, ...] = (
    LossTier("L1", 0.0, 500.0, 0.05, 50.0, 0.02, 20.0, "小额损失"),
    LossTier("L2", 500.0, 5000.0, 0.10, 200.0, 0.05, 100.0, "较大损失"),
    LossTier("L3", 5000.0, None, 0.20, 500.0, 0.10, 200.0, "重大损失"),
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
        # the ISO text's first seven characters: a tenth of strftime's cost, and 处罚 and its
        # monthly totals ask it twice for each of the chain's events at every write
        return self.day.isoformat()[:7]


def event_id(record_id: str, rule_id: str, kind: str, day: date | None = None) -> str:
    raw = "\x1f".join([record_id, rule_id, kind, day.isoformat() if day else ""])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


@paused_gc()   # up to 30 per-day events per late item; see gcpause
def events_for(items: Iterable[OverdueItem], records: dict[str, dict[str, Any]],
               rules: Iterable[PenaltyRule], heads: dict[str, str], *,
               tiers: Iterable[LossTier] = DEFAULT_TIERS,
               bases: dict[str, float] | None = None) -> list[PenaltyEvent]:
    """Penalty events for breached deadlines (延误追究) and losses (by tier, person and head).

    ``heads`` maps department -> head; ``bases`` person -> wage or bonus base (staff sheet).
    """
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
                                        round(r.per_event, 2), f"延误追究：{KIND_ZH[it.kind]}逾期，{r.description}"))
            for n in range(1, min(it.late_days, r.max_days) + 1 if r.per_day else 1):
                day = (it.due + timedelta(days=n - 1)).date()
                out.append(PenaltyEvent(event_id(it.record_id, r.rule_id, it.kind, day), it.record_id, it.shop,
                                        it.complaint_id, r.rule_id, it.kind, day, it.person, it.dept, head,
                                        round(r.per_day, 2), f"延误追究：{KIND_ZH[it.kind]}逾期第{n}天，每天{r.per_day:g}元"))
    out.extend(loss_events(records, tiers, heads, bases))
    return out


def _amount(share: float, fixed: float, base: float) -> tuple[float, str]:
    if share and base > 0:
        return round(base * share, 2), f"扣款基数 {base:,.0f} 元 × {share:.0%}"
    if fixed:
        return round(fixed, 2), f"固定金额 {fixed:,.0f} 元" + ("（人员表未填扣款基数）" if share else "")
    return 0.0, "人员表未填扣款基数，金额待主管核定"


def loss_events(records: dict[str, dict[str, Any]], tiers: Iterable[LossTier],
                heads: dict[str, str], bases: dict[str, float] | None = None) -> list[PenaltyEvent]:
    """Loss penalties: the directly responsible person and the department head, by tier.

    ``bases`` maps a person to the wage or bonus base on the staff sheet (missing: fixed amount).
    """
    tiers = list(tiers)
    bases = bases or {}
    out: list[PenaltyEvent] = []
    for rid, rec in records.items():
        loss = rec.get("loss_amount")
        person = str(rec.get("responsible_person") or "")
        if rec.get("deleted") or rec.get("validity") != "成立" or not person:
            continue
        if rec.get("root_cause") not in CHARGEABLE_CAUSES or rec.get("category") == "骚扰来电":
            continue   # 外部原因, 客户原因, 待查 or blank: nobody on the staff is at fault (yet)
        if not isinstance(loss, int | float) or isinstance(loss, bool) or loss <= 0:
            continue
        when = rec.get("resolved_at") or rec.get("received_at")
        if not isinstance(when, datetime):
            continue
        tier = next((t for t in tiers if t.fits(float(loss))), None)
        if tier is None:
            continue
        dept = str(rec.get("responsible_dept") or "")
        head = heads.get(dept, "")
        shop, cid = str(rec.get("shop") or ""), str(rec.get("complaint_id") or "")
        cause = rec.get("root_cause")
        roles = [("loss", person, tier.person_share, tier.person_fixed)]
        if head and head != person:
            roles.append(("loss_head", head, tier.head_share, tier.head_fixed))
        for kind, who, share, fixed in roles:
            amount, how = _amount(share, fixed, bases.get(who, 0.0))
            why = (f"{tier.label()}（损失 {loss:,.2f} 元，{cause}），{LOSS_KINDS[kind]}：{how}")
            if kind == "loss" and not head:
                why += "；部门负责人未在人员表登记"
            out.append(PenaltyEvent(event_id(rid, tier.tier_id, kind), rid, shop, cid, tier.tier_id, kind,
                                    when.date(), who, dept, head, amount, why))
    return out


# a person's amounts in one month, in this order (``month_sums``)
SUM_BUCKETS = ("confirmed", "pending", "appealed", "waived")
_BUCKET = {"确认": 0, "免除": 3, "申诉": 2}

MonthSums = dict[tuple[str, str], list[float]]   # (person, month) -> amounts by SUM_BUCKETS


def month_sums(events: Iterable[PenaltyEvent], confirmations: dict[str, str]) -> MonthSums:
    """(person, month) -> [confirmed, pending, appealed, waived] amounts of ``events``, added in
    their order. Only what a manager confirmed (确认) is owed; a line nobody has reviewed yet is
    待确认 (pending) and kept apart, as are 申诉 (held until decided) and 免除 (dropped)."""
    acc: MonthSums = {}
    for e in events:
        key = (e.person, e.month)
        sums = acc.get(key)
        if sums is None:
            sums = acc[key] = [0.0, 0.0, 0.0, 0.0]
        sums[_BUCKET.get(confirmations.get(e.event_id, "") or "", 1)] += e.amount
    return acc


def add_sums(into: MonthSums, more: MonthSums) -> None:
    """``more`` added into ``into`` (the merged workbook adds the shops' sums month by month,
    in the sheet's order, whether it made them now or kept them from the last write)."""
    for key, sums in more.items():
        got = into.get(key)
        if got is None:
            into[key] = list(sums)
        else:
            for i, amount in enumerate(sums):
                got[i] += amount


def totals_rows(sums: MonthSums) -> list[dict[str, Any]]:
    """Per person and month, sorted: the amounts of ``month_sums`` rounded to the fen, and
    ``due`` (what is owed: the confirmed amount)."""
    rows = []
    for (person, month), b in sorted(sums.items()):
        row: dict[str, Any] = {"person": person, "month": month}
        row.update({name: round(b[i], 2) for i, name in enumerate(SUM_BUCKETS)})
        row["due"] = row["confirmed"]
        rows.append(row)
    return rows


def monthly_totals(events: Iterable[PenaltyEvent], confirmations: dict[str, str]) -> list[dict[str, Any]]:
    """Per person and month: confirmed, pending (blank), appealed and waived amounts (``month_sums``)."""
    return totals_rows(month_sums(events, confirmations))
