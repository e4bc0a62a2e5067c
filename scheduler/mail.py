"""Reminder digests per responsible person and per department head, Chinese HTML + text."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from email.message import EmailMessage
from email.utils import format_datetime

from complaint_core.overdue import KIND_ZH, STATE_ZH, OverdueItem, open_items
from complaint_core.rules_book import Rules

DOMAIN = "complaint-desk.local"


@dataclass(frozen=True, slots=True)
class Mail:
    dedupe_key: str
    recipient: str
    subject: str
    text: str
    html: str

    @property
    def message_id(self) -> str:
        return f"<{safe_key(self.dedupe_key)}@{DOMAIN}>"


def safe_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _lines(items: list[OverdueItem]) -> tuple[str, str]:
    text = "\n".join(f"- {i.complaint_id or i.record_id}（{i.shop}）{KIND_ZH[i.kind]} 截止 {i.due:%Y-%m-%d %H:%M}："
                     f"{STATE_ZH[i.state]}" for i in items)
    rows = "".join(f"<tr><td>{html.escape(i.complaint_id or i.record_id)}</td><td>{html.escape(i.shop)}</td>"
                   f"<td>{KIND_ZH[i.kind]}</td><td>{i.due:%Y-%m-%d %H:%M}</td><td>{STATE_ZH[i.state]}</td></tr>"
                   for i in items)
    table = ("<table border='1' cellpadding='4'><tr><th>投诉编号</th><th>门店</th><th>时限</th><th>截止</th>"
             f"<th>状态</th></tr>{rows}</table>")
    return text, table


def digests(items: list[OverdueItem], rules: Rules, *, day: date, figures: dict[str, int]) -> list[Mail]:
    """One mail per person with open items, one per department head with their overdue items."""
    open_now = open_items(items)
    out: list[Mail] = []
    by_person: dict[str, list[OverdueItem]] = {}
    for i in open_now:
        by_person.setdefault(i.person, []).append(i)
    for name, its in sorted(by_person.items()):
        p = rules.person(name)
        if not p or not p.email:
            continue
        text, table = _lines(its)
        subject = f"投诉时限提醒 {day:%Y-%m-%d}：{len(its)} 条待处理"
        out.append(Mail(f"{name}|person|{day.isoformat()}", p.email, subject,
                        f"{name}，您好：\n以下投诉即将到期或已逾期，请尽快处理：\n{text}\n",
                        f"<p>{html.escape(name)}，您好：</p><p>以下投诉即将到期或已逾期，请尽快处理：</p>{table}"))
    heads: dict[str, tuple[str, str]] = {}
    for p in rules.staff:
        if p.dept and p.head:
            boss = rules.person(p.head)
            email = p.manager_email or (boss.email if boss else "")
            if email:
                heads[p.dept] = (p.head, email)
    by_head: dict[tuple[str, str], list[OverdueItem]] = {}
    for dept, key in heads.items():
        by_head.setdefault(key, []).extend(i for i in open_now if i.dept == dept and i.state == "overdue")
    figs = "；".join(f"{k} {v}" for k, v in figures.items())
    for (head, email), its in sorted(by_head.items()):
        text, table = _lines(its)
        subject = f"部门投诉逾期汇总 {day:%Y-%m-%d}：逾期 {len(its)} 条"
        out.append(Mail(f"{head}|manager|{day.isoformat()}", email, subject,
                        f"{head}，您好：\n今日概况：{figs}\n本部门逾期投诉：\n{text or '无'}\n",
                        f"<p>{html.escape(head)}，您好：</p><p>今日概况：{html.escape(figs)}</p>"
                        f"<p>本部门逾期投诉：</p>{table}"))
    return out


def mail_date(now: datetime, zone: tzinfo | None = None) -> str:
    """The Date header: ``now`` is the shop's wall-clock time without a zone; a naive datetime
    would be written as ``-0000`` (unknown zone) and mail clients would show it as UTC, 8 hours
    off in China. ``zone`` is [scan] timezone; without it, the computer's own zone."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=zone) if zone is not None else now.astimezone()
    return format_datetime(now)


def compose(mail: Mail, *, sender: str, now: datetime, zone: tzinfo | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = mail.recipient
    msg["Subject"] = mail.subject
    msg["Message-ID"] = mail.message_id
    msg["Date"] = mail_date(now, zone)
    msg.set_content(mail.text, charset="utf-8")
    msg.add_alternative(f"<html><body>{mail.html}</body></html>", subtype="html", charset="utf-8")
    return msg
