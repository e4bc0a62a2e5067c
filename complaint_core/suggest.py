"""Suggested handling steps and deadlines for each row: only empty cells are ever filled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .deadlines import deadlines
from .ids import next_ids
from .model import ComplaintTable, RowFill
from .playbook import DEFAULT_PLAYBOOK, Playbook
from .settings import DEFAULTS, Settings


def suggest_steps(values: dict[str, Any], playbook: Playbook = DEFAULT_PLAYBOOK, *,
                  now: datetime, settings: Settings = DEFAULTS) -> str:
    """Numbered Chinese steps that fit the row, ending with why the deadlines are what they are."""
    advice = [r.advice for r in playbook.rules if r.applies(values)]
    due = deadlines(values, settings)
    status = values.get("status")
    if due.contact_due and values.get("first_contact_at") is None and status not in ("已关闭", "不成立"):
        late = "（已超时，立即联系）" if now > due.contact_due else ""
        advice.insert(0, f"{due.contact_due:%m-%d %H:%M} 前电话联系客户{late}")
    advice.append(due.why_zh)
    return "\n".join(f"{i}. {a}" for i, a in enumerate(advice, start=1))


def fills_for_table(table: ComplaintTable, playbook: Playbook = DEFAULT_PLAYBOOK, *,
                    now: datetime, settings: Settings = DEFAULTS) -> list[RowFill]:
    """What to write into each row's EMPTY id, shop, suggestion and deadline cells."""
    shop = table.shop_code or settings.shop_code or ""
    existing = [v for r in table.rows if isinstance(v := r.values.get("complaint_id"), str)]
    need_id = [r for r in table.rows if r.values.get("complaint_id") is None]
    new_ids = iter(next_ids(
        shop, [r.values.get("received_at") if isinstance(r.values.get("received_at"), datetime)
               else None for r in need_id], existing, today=now))
    fills: list[RowFill] = []
    for r in table.rows:
        v = r.values
        out: dict[str, Any] = {}
        if v.get("complaint_id") is None:
            out["complaint_id"] = next(new_ids)
        if v.get("shop") is None and shop:
            out["shop"] = shop
        if isinstance(v.get("received_at"), datetime):
            due = deadlines(v, settings)
            for key, value in (("contact_due", due.contact_due), ("feedback_due", due.feedback_due),
                               ("followup_due", due.followup_due)):
                if value is not None and v.get(key) is None:
                    out[key] = value
            if v.get("suggested_steps") is None:
                out["suggested_steps"] = suggest_steps(v, playbook, now=now, settings=settings)
        if out:
            fills.append(RowFill(row=r.row, values=out))
    return fills
