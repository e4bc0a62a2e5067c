"""Suggested handling steps and deadlines for each row: only empty cells are ever filled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .deadlines import Deadlines, deadlines
from .ids import next_ids
from .model import ComplaintTable, RowFill
from .playbook import DEFAULT_PLAYBOOK, Playbook
from .settings import DEFAULTS, Settings

# A cell shows about this much comfortably; longer text is cut back (outline rules first).
MAX_CHARS = 600
_DONE = ("已关闭", "不成立")


def _actions(values: dict[str, Any], due: Deadlines, now: datetime) -> list[str]:
    """The next deadline-bound actions for this row, with their due times (overdue flagged)."""
    status = values.get("status")
    if status in _DONE:
        return []

    def when(moment: datetime) -> str:
        return f"{moment:%m-%d %H:%M} 前" + ("（已超时，立即处理）" if now > moment else "")

    out: list[str] = []
    if due.contact_due and values.get("first_contact_at") is None:
        late = "（已超时，立即联系）" if now > due.contact_due else ""
        out.append(f"{due.contact_due:%m-%d %H:%M} 前电话联系客户{late}")
    if due.feedback_due and values.get("feedback_at") is None and values.get("resolved_at") is None:
        out.append(f"{when(due.feedback_due)}向客户反馈处理进度或结果")
    if due.followup_due and values.get("followup_at") is None:
        out.append(f"{when(due.followup_due)}回访客户：方案是否落实、是否满意、还有无其他问题")
    return out


def suggest_steps(values: dict[str, Any], playbook: Playbook = DEFAULT_PLAYBOOK, *,
                  now: datetime, settings: Settings = DEFAULTS) -> str:
    """Numbered Chinese steps that fit the row, ending with why the deadlines are what they are."""
    due = deadlines(values, settings)
    fitting = [r for r in playbook.rules if r.applies(values)]
    advice = _actions(values, due, now) + [r.advice for r in fitting] + [due.why_zh]
    text = _numbered(advice)
    if len(text) > MAX_CHARS:
        # Keep the situation-specific advice whole; the always-on outlines shrink to their names.
        short = [r.advice.split("：")[0] if r.field is None else r.advice for r in fitting]
        text = _numbered(_actions(values, due, now) + short + [due.why_zh])
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS - 1] + "…"
    return text


def _numbered(items: list[str]) -> str:
    return "\n".join(f"{i}. {a}" for i, a in enumerate(items, start=1))


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
