"""Reminder digests per responsible person and per department head, Chinese HTML + text."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from email.message import EmailMessage
from email.utils import format_datetime

from complaint_core.overdue import KIND_ZH, STATE_ZH, OverdueItem
from complaint_core.rules_book import Rules

from .digestbook import DigestBook, more_line

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


def digests(items: Iterable[OverdueItem] | DigestBook, rules: Rules, *, day: date,
            figures: dict[str, int]) -> list[Mail]:
    """One mail per person with open items, one per department head with their overdue items;
    each lists at most ``digestbook.LINES`` of them, the most urgent, and says how many more."""
    book = items if isinstance(items, DigestBook) else DigestBook.of(items, rules)
    out: list[Mail] = []
    for name, short in sorted(book.persons.items()):
        text, table = _lines(short.items)
        more = more_line(short)
        subject = f"投诉时限提醒 {day:%Y-%m-%d}：{short.count} 条待处理"
        out.append(Mail(f"{name}|person|{day.isoformat()}", book.email(name), subject,
                        f"{name}，您好：\n以下投诉即将到期或已逾期，请尽快处理：\n{_more(more)}{text}\n",
                        f"<p>{html.escape(name)}，您好：</p><p>以下投诉即将到期或已逾期，请尽快处理：</p>"
                        f"{_more_html(more)}{table}"))
    figs = "；".join(f"{k} {v}" for k, v in figures.items())
    for (head, email), short in sorted(book.heads.items()):
        text, table = _lines(short.items)
        more = more_line(short)
        subject = f"部门投诉逾期汇总 {day:%Y-%m-%d}：逾期 {short.count} 条"
        out.append(Mail(f"{head}|manager|{day.isoformat()}", email, subject,
                        f"{head}，您好：\n今日概况：{figs}\n本部门逾期投诉：\n{_more(more)}{text or '无'}\n",
                        f"<p>{html.escape(head)}，您好：</p><p>今日概况：{html.escape(figs)}</p>"
                        f"<p>本部门逾期投诉：</p>{_more_html(more)}{table}"))
    return out


def _more(line: str) -> str:
    return f"（{line}）\n" if line else ""


def _more_html(line: str) -> str:
    return f"<p>（{html.escape(line)}）</p>" if line else ""


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
