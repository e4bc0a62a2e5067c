"""The day's digests keep a few items per recipient, not every open deadline (issue 17): a chain
with years of history has tens of thousands open, which a scan held until the digests were
written and a mail then listed in full. A digest lists its ``LINES`` most urgent items in the
order the scan met them and says how many more are on the 逾期 sheet; under the limit it is what
it always was."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

import scheduler.digestbook as digestbook
from bench.data import rows_for, write_shop
from complaint_core.overdue import OverdueItem
from complaint_core.reader import read_workbook
from complaint_core.rules_book import Person, Rules
from complaint_core.store import open_store
from complaint_core.store.ingest import ingest_table
from complaint_core.store.sched_tables import outbox
from scheduler.api import scan_once
from scheduler.digestbook import DigestBook
from scheduler.mail import digests
from scheduler.robots import Robot, digest_posts

NOW = datetime(2026, 11, 20, 9, 30)
DAY = NOW.date()
RULES = Rules(staff=(Person("张伟", "销售部", "王芳", "zw@example.cn", mobile="13800138000"),
                     Person("李娜", "售后部", "王芳", "ln@example.cn"),
                     Person("王芳", "门店管理", "", "wf@example.cn", mobile="13900139000")))
ROBOTS = (Robot("S1群", "wecom", "X1", "", ("S1",)), Robot("主管群", "feishu", "X2", "", ()))


def _item(n: int, *, state: str, hours: float, person: str = "张伟", dept: str = "销售部",
          shop: str = "S1") -> OverdueItem:
    due = NOW + timedelta(hours=hours)
    return OverdueItem(f"r{n}", shop, f"TS{n:04d}", "feedback", due, None, state,
                       max(timedelta(0), NOW - due), person, dept, ("受理时间", NOW, "3 天", False, NOW))


def _listed(text: str) -> list[str]:
    return re.findall(r"TS\d{4}", text)


def test_under_the_limit_a_digest_lists_every_item_in_the_order_met() -> None:
    items = [_item(n, state="overdue" if n % 2 else "due_soon", hours=-n if n % 2 else n) for n in range(1, 8)]
    mail = next(m for m in digests(items, RULES, day=DAY, figures={}) if m.recipient == "zw@example.cn")
    assert _listed(mail.text) == [f"TS{n:04d}" for n in range(1, 8)]
    assert "共" not in mail.text and "其余" not in mail.html
    assert "7 条待处理" in mail.subject


def test_over_the_limit_a_digest_lists_the_most_urgent_and_counts_the_rest() -> None:
    # met in this order: due soon (in 1..10 h), then overdue by 1..10 h
    soon = [_item(n, state="due_soon", hours=n) for n in range(1, 11)]
    late = [_item(10 + n, state="overdue", hours=-n) for n in range(1, 11)]
    book = DigestBook.of(soon + late, RULES, ROBOTS, limit=4)
    mail = next(m for m in digests(book, RULES, day=DAY, figures={}) if m.recipient == "zw@example.cn")
    # overdue before due soon, the longest late first; listed in the order the scan met them
    assert _listed(mail.text) == ["TS0017", "TS0018", "TS0019", "TS0020"]
    assert "20 条待处理" in mail.subject
    assert "共 20 条，以下列出最紧急的 4 条；其余 16 条见汇总工作簿“逾期”表" in mail.text
    assert "其余 16 条" in mail.html
    head = next(m for m in digests(book, RULES, day=DAY, figures={}) if m.recipient == "wf@example.cn")
    assert "逾期 10 条" in head.subject and _listed(head.text) == ["TS0017", "TS0018", "TS0019", "TS0020"]
    # with only two overdue items, the nearest due-soon ones fill the list
    book = DigestBook.of(soon + late[:2], RULES, limit=4)
    mail = next(m for m in digests(book, RULES, day=DAY, figures={}) if m.recipient == "zw@example.cn")
    assert _listed(mail.text) == ["TS0001", "TS0002", "TS0011", "TS0012"]


def test_a_post_says_how_many_are_left_out_before_its_list_and_tags_everyone() -> None:
    items = [_item(n, state="overdue", hours=-n, person="张伟" if n <= 5 else "李娜",
                   dept="销售部") for n in range(1, 9)]
    posts = {p.robot: p for p in digest_posts(DigestBook.of(items, RULES, ROBOTS, limit=3), RULES, ROBOTS,
                                              day=DAY, figures={"投诉": 8})}
    shop = posts["S1群"]
    lines = shop.text.split("\n")
    assert lines[0].endswith("8 条待处理") and "其余 5 条" in lines[1]   # near the top: a size limit cuts the end
    assert _listed(shop.text) == ["TS0006", "TS0007", "TS0008"]
    # 张伟's items are all left out, and he is still @-ed
    assert [name for name, _m in shop.mentions] == ["张伟", "李娜"]
    assert "其余 5 条" in posts["主管群"].markdown.split("\n")[2]


def test_the_book_keeps_nothing_for_whom_no_digest_goes() -> None:
    items = [_item(n, state="overdue", hours=-n, person="无名氏", dept="无部门", shop="S9") for n in range(500)]
    book = DigestBook.of(items, RULES, ROBOTS[:1])
    assert book.states["overdue"] == 500
    assert not book.persons and not book.groups
    assert all(not short.count for short in book.heads.values())
    assert digest_posts(book, RULES, ROBOTS[:1], day=DAY, figures={}) == []


def test_a_scan_of_a_store_queues_digests_of_the_limit_with_the_full_count(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(digestbook, "LINES", 2)
    store = open_store(tmp_path / "s.sqlite")
    path = write_shop(tmp_path / "shops" / "S1" / "S1.xlsx", rows_for(120, shop="S1", seed=3), shop="S1")
    st = path.stat()
    ingest_table(store, path, read_workbook(path), [], file_hash="x", size=st.st_size, mtime=st.st_mtime, now=NOW)
    people = {str(r.get("responsible_person") or r.get("received_by") or "") for r in store.snapshot()[0]} - {""}
    rules = Rules(staff=tuple(Person(p, "销售部", "", f"p{i}@example.cn") for i, p in enumerate(sorted(people))))
    rep = scan_once(store, now=NOW, rules=rules)
    assert rep.queued_mails
    with store.engine.connect() as c:
        mails = c.execute(select(outbox.c.dedupe_key, outbox.c.subject, outbox.c.body_text)
                          .where(outbox.c.dedupe_key.like("%|person|%"))).all()
    counted, cut = 0, 0
    for _key, subject, text in mails:
        total = int(re.search(r"(\d+) 条待处理", subject).group(1))
        counted, cut = counted + total, cut + (total > 2)
        assert len(re.findall(r"^- ", text, re.M)) == min(total, 2)
        assert ("其余" in text) == (total > 2)
    assert cut and counted == rep.states.get("overdue", 0) + rep.states.get("due_soon", 0)
