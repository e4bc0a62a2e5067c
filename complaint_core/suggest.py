"""Suggested handling steps and deadlines for each row: only empty cells are ever filled."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .deadlines import Deadlines, deadlines
from .ids import next_ids
from .model import ComplaintTable, RowFill
from .playbook import DEFAULT_PLAYBOOK, Playbook
from .settings import DEFAULTS, Settings

# A cell shows about this much comfortably; longer text is cut back (outline rules first).
MAX_CHARS = 600
MAX_CHARS_EN = 1200               # English needs about twice the characters for the same advice
_DONE = ("已关闭", "不成立")


_WORDS = {
    "zh": ("{t} 前", "（已超时，立即处理）", "（已超时，立即联系）", "电话联系客户", "向客户反馈处理进度或结果",
           "回访客户：方案是否落实、是否满意、还有无其他问题", "："),
    "en": ("by {t} ", " (overdue: act now)", " (overdue: call now)", "phone the customer",
           "give the customer progress or the result", "follow up: was the plan carried out, is the "
           "customer satisfied, anything else wrong", ":"),
}


def _actions(values: dict[str, Any], due: Deadlines, now: datetime, lang: str = "zh") -> list[str]:
    """The next deadline-bound actions for this row, with their due times (overdue flagged)."""
    if values.get("status") in _DONE:
        return []
    by, late_any, late_call, call, feedback, followup, _ = _WORDS["en" if lang == "en" else "zh"]

    def when(moment: datetime, late: str = late_any) -> str:
        return by.format(t=f"{moment:%m-%d %H:%M}") + (late if now > moment else "")

    out: list[str] = []
    if due.contact_due and values.get("first_contact_at") is None:
        out.append(f"{by.format(t=f'{due.contact_due:%m-%d %H:%M}')}{call}"
                   f"{late_call if now > due.contact_due else ''}")
    if due.feedback_due and values.get("feedback_at") is None and values.get("resolved_at") is None:
        out.append(f"{when(due.feedback_due)}{feedback}")
    if due.followup_due and values.get("followup_at") is None:
        out.append(f"{when(due.followup_due)}{followup}")
    return out


def suggest_steps(values: dict[str, Any], playbook: Playbook = DEFAULT_PLAYBOOK, *,
                  now: datetime, settings: Settings = DEFAULTS, lang: str = "zh") -> str:
    """Numbered steps that fit the row (Chinese; ``lang="en"`` for English), ending with why the
    deadlines are what they are."""
    due = deadlines(values, settings)
    why = due.why_en if lang == "en" else due.why_zh
    sep = _WORDS["en" if lang == "en" else "zh"][-1]
    fitting = [r for r in playbook.rules if r.applies(values)]
    actions = _actions(values, due, now, lang)
    limit = MAX_CHARS_EN if lang == "en" else MAX_CHARS
    text = _numbered(actions + [r.text(lang) for r in fitting] + [why])
    if len(text) > limit:
        # Keep the situation-specific advice whole; the always-on outlines shrink to their names.
        short = [r.text(lang).split(sep)[0] if r.field is None else r.text(lang) for r in fitting]
        text = _numbered(actions + short + [why])
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return text


def _numbered(items: list[str]) -> str:
    return "\n".join(f"{i}. {a}" for i, a in enumerate(items, start=1))


def fills_for_table(table: ComplaintTable, playbook: Playbook = DEFAULT_PLAYBOOK, *,
                    now: datetime, settings: Settings | None = None, taken: Iterable[str] = ()) -> list[RowFill]:
    """What to write into each row's EMPTY id, shop, suggestion and deadline cells.

    ``taken``: ids used elsewhere in the workbook (its other complaint tables), never handed out again.
    """
    settings = settings or table.settings or DEFAULTS
    shop = table.shop_code or settings.shop_code or ""
    existing = [v for r in table.rows if isinstance(v := r.values.get("complaint_id"), str)] + list(taken)
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
