"""Escalation on arrival and the robots' daily digests, from a real store through scan_once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

import scheduler.api  # noqa: F401  (registers the scheduler tables before the store opens)
from complaint_core.rules_book import Person, Rules
from complaint_core.store import open_store
from complaint_core.store import tables as t
from complaint_core.store.db import content_hash, encode_values, record_key
from complaint_core.store.sched_tables import outbox
from scheduler.api import scan_once
from scheduler.escalate import managers
from scheduler.robots import Robot

NOW = datetime(2026, 3, 2, 15, 0)
RULES = Rules(staff=(Person("张三", "门店", "李店长", "zs@example.com", mobile="13800138000"),
                     Person("王五", "售后部", "赵主管", "ww@example.com", mobile="13900139000"),
                     Person("李店长", "门店管理", "", "boss@example.com", mobile="13700137000"),
                     Person("赵主管", "门店管理", "", "zhao@example.com", "area@example.com")))
ROBOTS = (Robot("SH01群", "wecom", "X1", "", ("SH01",)), Robot("SH02群", "dingtalk", "X2", "", ("SH02",)),
          Robot("主管群", "feishu", "X3", "", ()))


def add(store, shop, n, version=1, **values):
    base = {"complaint_id": f"{shop}-{n}", "shop": shop, "received_at": datetime(2026, 3, 2, 10, n),
            "responsible_person": "张三" if shop == "SH01" else "王五",
            "responsible_dept": "门店" if shop == "SH01" else "售后部", "validity": "成立", "status": "处理中",
            "channel": "现场", "severity": "一般", "description": "商品有划痕"}
    base.update(values)
    data = encode_values(base)
    with store.begin() as c:
        if version > 1:
            c.execute(update(t.source_rows).where(t.source_rows.c.complaint_id == f"{shop}-{n}")
                      .values(content_hash=content_hash(data), data=data, version=version, last_seen=NOW))
            # as ingest does: every change is a row version (what the next scan looks for)
            c.execute(insert(t.row_versions).values(
                source_path=f"/shops/{shop}.xlsx", sheet="投诉登记", row=n + 2,
                record_key=record_key(shop, f"{shop}-{n}", "", 0), version=version, content_hash=content_hash(data),
                data=data, deleted=False, seen_at=NOW))
            return
        c.execute(insert(t.source_rows).values(
            source_path=f"/shops/{shop}.xlsx", sheet="投诉登记", row=n + 2, shop=shop, complaint_id=f"{shop}-{n}",
            record_key=record_key(shop, f"{shop}-{n}", "", 0), content_hash=content_hash(data), data=data,
            version=1, first_seen=NOW, last_seen=NOW, deleted=False))


@pytest.fixture
def store(tmp_path):
    return open_store(f"sqlite:///{tmp_path / 'state.db'}")


def rows(store, where=None):
    with store.begin() as c:
        q = select(outbox)
        return [r._asdict() for r in c.execute(q if where is None else q.where(where))]


def alerts(store):
    return [r for r in rows(store) if "escalate|" in r["dedupe_key"]]


def test_managers_come_from_the_staff_directory():
    got = {(m.name, m.email, m.mobile) for m in managers(RULES)}
    # the heads named in 部门负责人, and a 主管邮箱 (here on a row without a head of its own)
    assert got == {("李店长", "boss@example.com", "13700137000"), ("赵主管", "zhao@example.com", ""),
                   ("主管", "area@example.com", "")}


def test_risky_complaint_alerts_managers_in_the_first_scan_once(store):
    add(store, "SH01", 0)                                              # ordinary: no alert
    add(store, "SH01", 1, severity="严重")
    add(store, "SH02", 2, description="客户说要找记者曝光，还要打 12315")
    add(store, "SH02", 3, channel="第三方转办", status="已关闭", resolved_at=datetime(2026, 3, 2, 12, 0),
        followup_at=datetime(2026, 3, 2, 13, 0))                       # already closed: history, no alert
    rep = scan_once(store, now=NOW, rules=RULES, robots=ROBOTS)
    got = alerts(store)
    mails = sorted((r["recipient"], r["subject"]) for r in got if r["channel"] != "bot")
    assert {m[0] for m in mails} == {"boss@example.com", "zhao@example.com", "area@example.com"}
    assert len(mails) == 6 and all("预警上报" in s for _r, s in mails)
    assert any("SH02-2" in s and "记者" in s and "12315" in s for _r, s in mails)
    posts = [r for r in got if r["channel"] == "bot"]
    assert sorted(r["recipient"] for r in posts) == ["主管群", "主管群"]   # only the managers' group
    assert "13700137000" in posts[0]["mentions"]
    assert rep.queued_mails >= 6 and rep.queued_posts >= 2
    # the next scans (a restart, a later clock) alert nobody again
    again = scan_once(open_store(store.url), now=NOW + timedelta(minutes=15), rules=RULES, robots=ROBOTS)
    assert len(alerts(store)) == len(got) and again.queued_posts == 0


def test_a_complaint_that_becomes_risky_later_alerts_at_that_scan(store):
    add(store, "SH01", 0)
    scan_once(store, now=NOW, rules=RULES, robots=ROBOTS)
    assert alerts(store) == []
    add(store, "SH01", 0, version=2, customer_type="有社会背景型")
    scan_once(store, now=NOW + timedelta(minutes=15), rules=RULES, robots=ROBOTS)
    got = alerts(store)
    assert len(got) == 4 and all("有社会背景型" in r["body_text"] for r in got)   # 3 managers' mails, 1 post
    add(store, "SH01", 0, version=3, customer_type="有社会背景型", severity="严重")
    scan_once(store, now=NOW + timedelta(minutes=30), rules=RULES, robots=ROBOTS)
    assert len(alerts(store)) == 4   # once per complaint, whatever changes next


def test_robot_digests_per_shop_group_with_mentions(store):
    add(store, "SH01", 0)
    add(store, "SH02", 1)
    rep = scan_once(store, now=NOW, rules=RULES, robots=ROBOTS)   # both contacts are 3 h late
    digests = {r["recipient"]: r for r in rows(store) if "|digest|" in r["dedupe_key"]}
    assert set(digests) == {"SH01群", "SH02群", "主管群"} and rep.queued_posts == 3
    assert "SH01-0" in digests["SH01群"]["body_text"] and "SH02-1" not in digests["SH01群"]["body_text"]
    assert '["张三", "13800138000"]' in digests["SH01群"]["mentions"]
    assert '["王五", "13900139000"]' in digests["SH02群"]["mentions"]
    # the managers' group: figures and every overdue item, the department heads @-ed
    assert "今日概况" in digests["主管群"]["body_text"] and "SH02-1" in digests["主管群"]["body_text"]
    assert "李店长" in digests["主管群"]["mentions"] and "赵主管" in digests["主管群"]["mentions"]
    again = scan_once(store, now=NOW + timedelta(hours=2), rules=RULES, robots=ROBOTS)
    assert again.queued_posts == 0   # one digest a day per group, like the mails


def test_no_robots_no_posts_and_no_directory_no_alert_mails(store):
    add(store, "SH01", 1, severity="严重")
    rep = scan_once(store, now=NOW)
    assert rep.queued_posts == 0 and alerts(store) == []
