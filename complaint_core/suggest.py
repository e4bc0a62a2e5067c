"""Suggested handling steps and deadlines for each row: only empty cells are ever filled.

A suggestion is what a clerk reads before picking up the phone: escalation when it applies, the
deadlines with the channel the customer can be reached on, the one or two techniques that fit
with a sentence to say, the remedy asked for, and the one wrong behaviour to watch for. The six
steps and service recovery are on the 处理手册 sheet, referred to by name, never repeated.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .deadlines import Deadlines, deadlines
from .escalation import escalation_reasons
from .ids import next_ids
from .model import ComplaintTable, RowFill
from .playbook import DEFAULT_PLAYBOOK, Playbook, Rule
from .schema import HARASSMENT
from .settings import DEFAULTS, Settings

# What a cell shows comfortably; the limit for a clerk's reading before a call.
MAX_CHARS = 400
MAX_CHARS_EN = 800                # English needs about twice the characters for the same advice
MAX_TECHNIQUES = 2
_DONE = ("已关闭", "不成立")
# The remedy hints promise something: not for a complaint judged 不成立, nor for a request that
# goes beyond or misreads the rules (there the technique, not a promise, is the answer).
_NO_PROMISE_FIT = ("超出规定", "误解政策")

_WORDS = {
    "zh": {"by": "{t} 前", "late": "（已超时，立即处理）", "phone": "电话联系客户", "email": "发邮件联系客户（未留电话）",
           "any": "电话联系客户", "feedback": "向客户反馈处理进度或结果",
           "feedback_email": "发邮件向客户反馈处理进度或结果",
           "followup": "回访客户：方案是否落实、是否满意、还有无其他问题",
           "followup_email": "发邮件回访客户：方案是否落实、是否满意、还有无其他问题",
           "say": "可说：“{s}”", "sep": "：", "escalate": "{name}（{why}）：", "avoid": "避免：",
           "ref": "六步法、服务补救和全部错误行为见“处理手册”表。", "why_sep": "；"},
    "en": {"by": "by {t} ", "late": " (overdue: act now)", "phone": "phone the customer",
           "email": "email the customer (no phone given)",
           "any": "phone the customer",
           "feedback": "give the customer progress or the result",
           "feedback_email": "email the customer progress or the result",
           "followup": "follow up: was the plan carried out, is the customer satisfied, anything else wrong",
           "followup_email": "follow up by email: was the plan carried out, is the customer satisfied",
           "say": "Say: \u201c{s}\u201d", "sep": ": ", "escalate": "Escalate ({why}): ", "avoid": "Avoid: ",
           "ref": "The six steps, service recovery and every wrong behaviour are on the 处理手册 sheet.",
           "why_sep": "; "},
}


def _channel(values: dict[str, Any]) -> str:
    """How the customer can be reached: phone first (the 2-hour rule says phone), else email.

    Neither recorded: phone, as the rule says (validation already asks for one of them)."""
    if values.get("customer_phone") not in (None, ""):
        return "phone"
    if values.get("customer_email") not in (None, ""):
        return "email"
    return "any"


def _actions(values: dict[str, Any], due: Deadlines, now: datetime, lang: str = "zh") -> list[str]:
    """The next deadline-bound actions for this row, with their due times (overdue flagged)."""
    if values.get("status") in _DONE:
        return []
    w = _WORDS["en" if lang == "en" else "zh"]
    via = _channel(values)

    def when(moment: datetime) -> str:
        return w["by"].format(t=f"{moment:%m-%d %H:%M}")

    def late(moment: datetime) -> str:
        return w["late"] if now > moment else ""

    out: list[str] = []
    if due.contact_due and values.get("first_contact_at") is None:
        out.append(f"{when(due.contact_due)}{w[via]}{late(due.contact_due)}")
    if due.feedback_due and values.get("feedback_at") is None and values.get("resolved_at") is None:
        out.append(f"{when(due.feedback_due)}{w['feedback_email' if via == 'email' else 'feedback']}"
                   f"{late(due.feedback_due)}")
    if due.followup_due and values.get("followup_at") is None:
        out.append(f"{when(due.followup_due)}{w['followup_email' if via == 'email' else 'followup']}"
                   f"{late(due.followup_due)}")
    return out


def _line(rule: Rule, lang: str, *, action: bool = True, say: bool = True) -> str:
    w = _WORDS["en" if lang == "en" else "zh"]
    if lang == "en" and rule.action_en:
        head, text, sentence = "", rule.action_en, rule.say_en or rule.say
    else:
        head, text, sentence = rule.name + w["sep"], rule.action, rule.say
    parts = [text] if action and text else []
    if say and sentence:
        parts.append(w["say"].format(s=sentence))
    return head + (" " if lang == "en" else "").join(parts) if parts else rule.name


def techniques(values: dict[str, Any], playbook: Playbook) -> list[Rule]:
    """The one or two 技巧 rows that fit, in the sheet's order (the fallback when none fits)."""
    fitting = [r for r in playbook.of("技巧") if r.field is not None and r.applies(values)]
    if not fitting:
        fitting = [r for r in playbook.of("技巧") if r.field is None]
    out: list[Rule] = []
    for r in fitting:
        if r.name not in {o.name for o in out}:
            out.append(r)
    return out[:MAX_TECHNIQUES]


def _first(playbook: Playbook, kind: str, values: dict[str, Any]) -> Rule | None:
    specific = [r for r in playbook.of(kind) if r.field is not None and r.applies(values)]
    return next(iter(specific or [r for r in playbook.of(kind) if r.field is None]), None)


def suggest_steps(values: dict[str, Any], playbook: Playbook = DEFAULT_PLAYBOOK, *,
                  now: datetime, settings: Settings = DEFAULTS, lang: str = "zh") -> str:
    """Numbered steps that fit the row (Chinese; ``lang="en"`` for English), at most MAX_CHARS."""
    w = _WORDS["en" if lang == "en" else "zh"]
    limit = MAX_CHARS_EN if lang == "en" else MAX_CHARS
    if values.get("category") == HARASSMENT:
        # not a complaint: no deadlines, no techniques, its own handling (seed 001 第四篇 五)
        rule = next(iter(playbook.of("骚扰")), None) or next(iter(DEFAULT_PLAYBOOK.of("骚扰")))
        return _cut(_numbered([_line(rule, lang)]), limit)
    due = deadlines(values, settings)
    actions = _actions(values, due, now, lang)
    why = escalation_reasons(values, playbook.risk_words, lang=lang)
    # a shop that deleted the 上报 row still escalates: the path is the texts' rule, not a phrase
    up = (next(iter(playbook.of("上报")), None) or next(iter(DEFAULT_PLAYBOOK.of("上报")))) if why else None
    tech = techniques(values, playbook)
    promise_ok = values.get("validity") != "不成立" and values.get("request_fit") not in _NO_PROMISE_FIT
    remedy = _first(playbook, "方案", values) if promise_ok else None
    if remedy is not None and remedy.field is None:
        remedy = None   # a remedy only for what the customer asked for
    avoid = _first(playbook, "避免", values)

    def build(level: int) -> str:
        items: list[str] = []
        if up is not None:
            head = w["escalate"].format(name=up.name, why=w["why_sep"].join(why))
            text = up.action_en if lang == "en" and up.action_en else up.action
            if level >= 5:
                text = text.split("；" if lang != "en" else ";")[0]
            say = up.say_en if lang == "en" and up.say_en else up.say
            if say and level < 1:
                text += (" " if lang == "en" else "") + w["say"].format(s=say)
            items.append(head + text)
        items += actions
        for n, t in enumerate(tech):
            items.append(_line(t, lang, action=level < (3 if n else 4)))
        if remedy is not None and level < 2:
            items.append(_line(remedy, lang, say=level < 1))
        if avoid is not None:
            items.append(w["avoid"] + (avoid.action_en if lang == "en" and avoid.action_en else avoid.action))
        text = _numbered(items)
        return text + "\n" + w["ref"] if level < 6 else text

    text = build(0)
    for level in range(1, 7):
        if len(text) <= limit:
            break
        text = build(level)
    return _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


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
