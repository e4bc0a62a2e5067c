"""Escalation on arrival (预警上报): a risky complaint reaches the managers in the first scan after
it is merged, by mail and in the managers' robot groups, once per complaint, not in the next
day's digest.

Seed 004 puts "not exposed by the media" above every other rule and asks for severe cases to be
reported upward at once; a digest at 09:00 tomorrow is too late for a customer who threatened to
call the TV station this afternoon. The triggers are ``complaint_core.escalation`` (严重, 第三方转办,
有社会背景型, risk words). A complaint already closed when it is first seen (an old one on the day
this version is installed) is history, not news: no alert.

The key is per record (``escalate|<record id>``), so a rescan, a restart or a later edit of the
same complaint never alerts twice; a complaint that becomes risky later (a clerk sets 严重 the
next day) alerts at the first scan after that edit.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from complaint_core.escalation import escalation_reasons
from complaint_core.rules_book import Rules
from complaint_core.store.sched_tables import outbox

from .mail import Mail
from .robots import CHANNEL, Post, Robot, md_safe

CLOSED = ("已解决", "已回访", "已关闭", "不成立")
KEY = "escalate"


@dataclass(frozen=True, slots=True)
class Manager:
    name: str
    email: str
    mobile: str


def managers(rules: Rules) -> list[Manager]:
    """The managers of the staff directory: everyone named as a department head, and every
    主管邮箱; one entry per address."""
    out: dict[str, Manager] = {}
    for name in dict.fromkeys(p.head for p in rules.staff if p.head):
        p = rules.person(name)
        key = (p.email if p and p.email else f"name:{name}").lower()
        out.setdefault(key, Manager(name, p.email if p else "", p.mobile if p else ""))
    for p in rules.staff:
        if p.manager_email and p.manager_email.lower() not in out:
            head = rules.person(p.head) if p.head else None
            out[p.manager_email.lower()] = Manager(p.head or "主管", p.manager_email, head.mobile if head else "")
    return list(out.values())


def is_open(rec: Mapping[str, Any]) -> bool:
    return rec.get("status") not in CLOSED and not isinstance(rec.get("resolved_at"), datetime)


def _fields(rec: Mapping[str, Any]) -> list[tuple[str, str]]:
    got = rec.get("received_at")
    return [("门店", str(rec.get("shop") or "")),
            ("受理时间", f"{got:%Y-%m-%d %H:%M}" if isinstance(got, datetime) else ""),
            ("渠道", str(rec.get("channel") or "")), ("类别", str(rec.get("category") or "")),
            ("投诉对象", str(rec.get("subject") or "")), ("责任人", str(rec.get("responsible_person") or "")),
            ("内容", str(rec.get("description") or "")[:300])]


def alerts(recs: Sequence[Mapping[str, Any]], rules: Rules, robots: Sequence[Robot],
           done: set[str] | frozenset[str] = frozenset()) -> tuple[list[Mail], list[Post]]:
    """The alerts for every open complaint that escalates and is not in ``done`` (record ids
    alerted before): a mail to each manager, a post to each managers' robot (``shops = []``), the
    managers @-ed by mobile (by name on Feishu)."""
    bosses = managers(rules)
    groups = [r for r in robots if r.for_managers]
    mails: list[Mail] = []
    posts: list[Post] = []
    if not bosses and not groups:
        return mails, posts
    for rec in recs:
        rid = str(rec.get("record_id") or "")
        if rid in done or not is_open(rec):
            continue
        reasons = escalation_reasons(rec)
        if not reasons:
            continue
        cid = str(rec.get("complaint_id") or rid)
        key = f"{KEY}|{rid}"
        title = f"【预警上报】{rec.get('shop') or ''} 投诉 {cid}：{'；'.join(reasons)}"
        fields = _fields(rec)
        text = "\n".join([title, *[f"{k}：{v}" for k, v in fields if v],
                          "请主管立即跟进（预警上报，不等次日汇总）。"])
        rows = "".join(f"<tr><th align='left'>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in fields if v)
        body = (f"<p><b>{html.escape(title)}</b></p><table border='1' cellpadding='4'>{rows}</table>"
                "<p>请主管立即跟进（预警上报，不等次日汇总）。</p>")
        for m in bosses:
            if m.email:
                mails.append(Mail(f"{key}|{m.email.lower()}", m.email, title, f"{m.name}，您好：\n{text}\n", body))
        md = "\n".join([f"### 【预警上报】{md_safe(cid)}", f"**原因**：{md_safe('；'.join(reasons))}",
                        *[f"- {k}：{md_safe(v)}" for k, v in fields if v], "请主管立即跟进。"])
        mentions = tuple((m.name, m.mobile) for m in bosses)
        for robot in groups:
            posts.append(Post(robot.name, f"{CHANNEL}|{robot.name}|{key}", title, text, md, mentions))
    return mails, posts


def alerted(conn: Connection) -> set[str]:
    """Record ids alerted before: a scan of 100,000 complaints then builds only the new alerts."""
    keys = conn.execute(select(outbox.c.dedupe_key).where(
        outbox.c.dedupe_key.like(f"{KEY}|%") | outbox.c.dedupe_key.like(f"{CHANNEL}|%|{KEY}|%"))).scalars()
    done: set[str] = set()
    for k in keys:
        if k.startswith(f"{KEY}|"):
            done.add(k[len(KEY) + 1:].rsplit("|", 1)[0])   # escalate|<record>|<address>
        else:
            done.add(k.split(f"|{KEY}|", 1)[1])               # bot|<robot>|escalate|<record>
    return done
