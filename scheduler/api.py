"""What the CLI calls: scan, send and the demo chain."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from complaint_core.gcpause import paused_gc
from complaint_core.merged.report import overdue_items
from complaint_core.overdue import flagged, scan
from complaint_core.penalties import events_for
from complaint_core.rules_book import Rules, load_rules
from complaint_core.settings import DEFAULTS
from complaint_core.store import Store, dcjson
from complaint_core.store.codec import content_hash
from complaint_core.store.db import View
from complaint_core.store.sched_tables import outbox as outbox_table
from complaint_core.store.sched_tables import penalty_events
from complaint_core.store.view import StoreView

from . import outbox as ob
from .escalate import queue_alerts_and_posts
from .idempotent import insert_missing
from .mail import digests
from .outbox import SendReport
from .robots import CHANNEL, Robot
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
    # ``flagged`` and ``overdue`` are the whole store's: in a full scan every flagged deadline (met
    # late too), in a rescan the open ones due soon or overdue, counted on the indexes;
    # ``states`` counts the deadlines this scan looked at
    scanned: int = 0        # records decoded by this scan (all of them only when ``full``)
    full: bool = True       # a first scan, new rules or settings: every record looked at


SCAN_STATE = "scan_state"   # chain_rules row: what the last scan saw (see _plan)
DAY = timedelta(days=1)


@dataclass
class _Plan:
    full: bool                      # look at every live record (first scan, new rules, clock back)
    keys: set[str]                  # otherwise: the records whose items may have changed
    digests: bool                   # build the digests (from every open deadline)
    mark: int                       # the store's newest row version at this scan
    fingerprint: str


def _fingerprint(rules: Rules, robots: Sequence[Any], settings: dict[str, Any]) -> str:
    # what changes every record's outcome at once: the rules, the robot groups, a shop's 设置
    # (through the store's own JSON once: the rules a workbook gave and the same rules saved in the
    # store differ only as 50 and 50.0)
    same = dcjson.dumps(dcjson.loads(Rules, dcjson.dumps(rules)))
    raw = json.dumps([same, [repr(r) for r in robots],
                      sorted((p, dcjson.dumps(s)) for p, s in settings.items())], ensure_ascii=False)
    return content_hash(raw)


def _late_days(at: datetime, due: datetime) -> int:
    if at <= due:
        return 0
    late = at - due
    return int(late / DAY) + (1 if late % DAY else 0)


def _plan(store: Store, conn: Any, *, now: datetime, rules: Rules, robots: Sequence[Any],
          settings: dict[str, Any]) -> _Plan:
    """Which records this scan must look at.

    Every outcome of the scan is a pure function of a record's stored row and ``now``, so after
    a scan at T only these can give something new at ``now``: the records whose rows changed
    since (a newer row version), a deadline that passed or came within its warning time in
    (T, now], and an overdue deadline whose per-day penalty count went up. Everything else gives
    exactly the events, alerts and items it gave at T, already stored. A new day rebuilds the
    digests from every open deadline (once a day); new rules, robots or 设置 rescan everything.
    """
    mark = store.version_mark(conn)
    fp = _fingerprint(rules, robots, settings)
    prev = store._named(SCAN_STATE, conn)
    state = json.loads(prev) if prev else None
    last = datetime.fromisoformat(state["now"]) if state else None
    if state is None or state.get("fingerprint") != fp or last is None or now < last:
        return _Plan(True, set(), True, mark, fp)
    keys = store.changed_keys(int(state["mark"]), conn) | store.unfilled_keys(conn)
    warns = [s.due_soon_hours for s in settings.values()] or [DEFAULTS.due_soon_hours]
    soon = last + timedelta(hours=min(warns))
    per_day = max([r.max_days for r in rules.penalties if r.per_day] + [0])
    for key, _kind, due in store.open_deadlines(now + timedelta(hours=max(warns)),
                                                after=last - per_day * DAY - DAY, conn=conn):
        # passed since the last scan; came within its warning time since; or one more day late
        if (last < due <= now or due > soon
                or _late_days(now, due) > _late_days(last, due) and _late_days(last, due) < per_day):
            keys.add(key)
    return _Plan(False, keys, now.date() != last.date() and _anyone_to_tell(rules, robots), mark, fp)


def _anyone_to_tell(rules: Rules, robots: Sequence[Any]) -> bool:
    # digests go to staff with an address and to robot groups: without either, none is built
    return bool(robots) or any(p.email or p.manager_email for p in rules.staff)


def _open_keys(store: Store, conn: Any, now: datetime, settings: dict[str, Any]) -> set[str]:
    warn = max([s.due_soon_hours for s in settings.values()] + [DEFAULTS.due_soon_hours])
    return {k for k, _kind, _due in store.open_deadlines(now + timedelta(hours=warn), conn=conn)} | \
        store.unfilled_keys(conn)


def _digest_due(conn: Any, items: Sequence[Any], rules: Rules, robots: Sequence[Any], day: Any) -> bool:
    """Same day, nothing rescanned wholesale: a digest can only be new for a person or a robot
    group that has none today yet and now has an open deadline (every digest is once a day)."""
    open_items = [i for i in items if i.state in ("due_soon", "overdue")]
    if not open_items:
        return False
    wanted = {f"{i.person}|person|{day.isoformat()}" for i in open_items
              if (p := rules.person(i.person)) is not None and p.email}
    for robot in robots:
        if any(robot.for_managers and i.state == "overdue" or not robot.for_managers and robot.covers(i.shop)
               for i in open_items):
            wanted.add(f"{CHANNEL}|{robot.name}|digest|{day.isoformat()}")
    if not wanted:
        return False
    have = set(conn.execute(select(outbox_table.c.dedupe_key).where(outbox_table.c.dedupe_key.in_(sorted(wanted))))
               .scalars())
    return bool(wanted - have)


@paused_gc()   # 1,000,000 records make 4 million penalty items: see complaint_core/gcpause.py
def scan_once(store: Store, *, now: datetime, rules: Rules | None = None,
              mail_transport: MailTransport | None = None, robots: Sequence[Robot] = ()) -> ScanReport:
    """Scan as of ``now``; new penalty events, the day's digests and escalation alerts land in
    one transaction.

    ``rules`` (a rules workbook just loaded) is used and saved into the store with the scan's
    results, so every later render uses them too; without it the rules last saved are used.

    Only the records whose outcome can have changed since the last scan are decoded (``_plan``):
    a rescan that finds nothing new reads a few indexed columns and writes nothing.
    """
    given = rules
    with store.engine.begin() as conn:
        view: StoreView = View(store, conn)
        if given is not None:
            view.memo("rules", lambda: given)
        rules = view.rules()
        settings = store.source_settings(conn)
        plan = _plan(store, conn, now=now, rules=rules, robots=robots, settings=settings)
        if plan.full:
            recs = view.live_records()
            items = overdue_items(view, now)
            count = len(recs)
        else:
            recs = [r for r in store.records_for(plan.keys, conn) if not r["deleted"]]
            items = scan(recs, now=now)
            count = store.live_count(conn)
        digest_items = items
        if not plan.full and not plan.digests and _digest_due(conn, items, rules, robots, now.date()):
            plan.digests = True
        if plan.digests and not plan.full:
            # the digests list every open deadline, not only the ones that changed
            opened = [r for r in store.records_for(_open_keys(store, conn, now, settings), conn) if not r["deleted"]]
            digest_items = scan(opened, now=now)
    evs = events_for(items, {r["record_id"]: r for r in recs}, rules.penalties, rules.heads(),
                     tiers=rules.tiers, bases=rules.bases())
    states = Counter(i.state for i in items)
    open_states = Counter(i.state for i in digest_items) if plan.digests else states
    figures = {"投诉": count, "已逾期": open_states["overdue"], "即将到期": open_states["due_soon"]}
    mails = digests(digest_items, rules, day=now.date(), figures=figures) if plan.digests else []
    rep = ScanReport(count, len(flagged(items)), states["overdue"], states=dict(states),
                     scanned=len(recs), full=plan.full)
    if not plan.full:
        # the whole store's figures, not only what this scan looked at: counted on the indexes
        # (plus the rows not yet given the scan's columns, which this scan did look at)
        with store.engine.connect() as conn:
            overdue, soon = store.open_counts(now, max(s.due_soon_hours for s in settings.values())
                                              if settings else DEFAULTS.due_soon_hours, conn)
            unfilled = store.unfilled_keys(conn)
        extra = Counter(i.state for i in items if i.record_id in unfilled)
        rep.overdue = overdue + extra["overdue"]
        rep.flagged = overdue + soon + extra["overdue"] + extra["due_soon"]
    if not plan.full and not recs and not plan.digests:
        # Nothing changed and no deadline moved: nothing to write, not even this scan's time
        # (the next scan's window then starts at the last scan that found something: the same
        # outcome, since nothing happened in between).
        if given is not None:
            store.save_rules(given, now=now)   # writes only rules that differ from the stored ones
        if mail_transport is not None:
            ob.send_due(store, mail_transport, now=now)
        return rep
    with store.begin() as c:
        have = {r[0] for r in c.execute(select(penalty_events.c.event_id))} if evs else set()
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
        more = queue_alerts_and_posts(c, recs, digest_items if plan.digests else [], rules, robots, now=now,
                                      figures=figures)   # escalate.py
        rep.queued_mails, rep.queued_posts = rep.queued_mails + more.mails, more.posts
        if given is not None:   # from now on every render (`sync --once` too) uses these rules
            store.save_rules(given, now=now, conn=c)
        store.save_named(SCAN_STATE, json.dumps({"now": now.isoformat(), "mark": plan.mark,
                                                  "fingerprint": plan.fingerprint}), now=now, conn=c)
    if mail_transport is not None:
        ob.send_due(store, mail_transport, now=now)
    return rep


def send_due(store: Store, transport: MailTransport, *, now: datetime, sender: str = "") -> SendReport:
    """Send what is due; ``sender`` (the config's mail.sender) is the From of every mail."""
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
