"""What the CLI calls: scan, send and the demo chain."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from complaint_core.gcpause import paused_gc
from complaint_core.merged.report import overdue_items
from complaint_core.overdue import flagged
from complaint_core.penalties import events_for
from complaint_core.rules_book import Rules, load_rules
from complaint_core.store import Store
from complaint_core.store.db import View
from complaint_core.store.sched_tables import SCHED_TABLES, penalty_events
from complaint_core.store.view import StoreView

from . import outbox as ob
from .escalate import queue_alerts_and_posts
from .idempotent import insert_missing
from .mail import digests
from .outbox import SendReport
from .robots import Robot
from .transport import EmlFolderTransport, MailTransport

__all__ = ["ScanReport", "SendReport", "demo_chain", "scan_once", "send_due"]


@dataclass
class ScanReport:
    records: int = 0
    flagged: int = 0
    overdue: int = 0
    new_penalties: int = 0
    queued_mails: int = 0
    states: dict[str, int] = field(default_factory=dict)
    queued_posts: int = 0   # group robot posts (escalation alerts and the day's digests)


def ensure_tables(store: Store) -> None:
    # open_store creates and upgrades every table; a store opened by an older caller may not have
    SCHED_TABLES[0].metadata.create_all(store.engine, tables=list(SCHED_TABLES))


@paused_gc()   # 1,000,000 records make 4 million penalty items: see complaint_core/gcpause.py
def scan_once(store: Store, *, now: datetime, rules: Rules | None = None,
              mail_transport: MailTransport | None = None, robots: Sequence[Robot] = ()) -> ScanReport:
    """Scan as of ``now``; new penalty events, the day's digests and escalation alerts land in
    one transaction.

    ``rules`` (a rules workbook just loaded) is used and saved into the store with the scan's
    results, so every later render uses them too; without it the rules last saved are used.
    """
    ensure_tables(store)
    given = rules
    with store.engine.begin() as conn:
        view: StoreView = View(store, conn)
        if given is not None:
            view.memo("rules", lambda: given)
        rules = view.rules()
        recs = view.live_records()
        items = overdue_items(view, now)
    evs = events_for(items, {r["record_id"]: r for r in recs}, rules.penalties, rules.heads(),
                     tiers=rules.tiers, bases=rules.bases())
    states = Counter(i.state for i in items)
    figures = {"投诉": len(recs), "已逾期": states["overdue"], "即将到期": states["due_soon"]}
    mails = digests(items, rules, day=now.date(), figures=figures)
    rep = ScanReport(len(recs), len(flagged(items)), states["overdue"], states=dict(states))
    with store.begin() as c:
        have = {r[0] for r in c.execute(select(penalty_events.c.event_id))}
        new = []
        for e in evs:
            if e.event_id in have:
                continue   # rescanning never doubles a penalty
            have.add(e.event_id)
            new.append(dict(event_id=e.event_id, record_id=e.record_id, shop=e.shop, complaint_id=e.complaint_id,
                            rule_id=e.rule_id, kind=e.kind, day=e.day, person=e.person, dept=e.dept,
                            head=e.head, amount=e.amount, why=e.why, first_seen=now))
        # A scanner running at the same time may store some of these between our read and our
        # insert: those are skipped, not an error (see scheduler/idempotent.py).
        rep.new_penalties = insert_missing(c, penalty_events, penalty_events.c.event_id, new)
        rep.queued_mails = ob.queue(c, mails, now=now)
        more = queue_alerts_and_posts(c, recs, items, rules, robots, now=now, figures=figures)   # escalate.py
        rep.queued_mails, rep.queued_posts = rep.queued_mails + more.mails, more.posts
        if given is not None:   # from now on every render (`sync --once` too) uses these rules
            store.save_rules(given, now=now, conn=c)
    if mail_transport is not None:
        ob.send_due(store, mail_transport, now=now)
    return rep


def send_due(store: Store, transport: MailTransport, *, now: datetime, sender: str = "") -> SendReport:
    """Send what is due; ``sender`` (the config's mail.sender) is the From of every mail."""
    ensure_tables(store)
    return ob.send_due(store, transport, now=now, sender=sender)


def demo_chain(state_url: str, merged_out: str | Path, *, now: datetime, outbox_dir: str | Path,
               rules_path: str | Path | None = None) -> dict[str, Any]:
    from complaint_core.merged.render import render_merged
    from complaint_core.store import open_store

    store = open_store(state_url)
    rep = scan_once(store, now=now, rules=load_rules(rules_path) if rules_path else None)
    sent = send_due(store, EmlFolderTransport(Path(outbox_dir)), now=now)
    render_merged(store, Path(merged_out), now=now)
    return {"scan": rep, "mail": sent}
