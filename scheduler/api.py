"""What the CLI calls: scan, send and the demo chain."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from complaint_core.gcpause import paused_gc
from complaint_core.overdue import flagged, scan
from complaint_core.penalties import PenaltyEvent, events_for
from complaint_core.rules_book import Rules, load_rules
from complaint_core.settings import DEFAULTS
from complaint_core.store import Store, dcjson
from complaint_core.store.codec import content_hash, key_shop
from complaint_core.store.db import View
from complaint_core.store.sched_tables import outbox as outbox_table
from complaint_core.store.sched_tables import penalty_events
from complaint_core.store.view import StoreView

from . import outbox as ob
from .digestbook import DigestBook
from .escalate import alerted, alerts
from .idempotent import insert_missing
from .mail import digests
from .outbox import SendReport
from .robots import CHANNEL, Robot, digest_posts
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
# complaints of one shop a full scan decodes at once: a bigger shop is taken in parts of this
# size (store.db.Store.shop_records); ~40 MB of records and their items at a time
SCAN_CHUNK = 10_000


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


def _digest_due(conn: Any, book: DigestBook, day: Any) -> bool:
    """Same day, nothing rescanned wholesale: a digest can only be new for a person or a robot
    group that has none today yet and now has an open deadline (every digest is once a day);
    ``book``: the open deadlines of the records this scan looked at."""
    wanted = book.wanted(day, CHANNEL)
    if not wanted:
        return False
    have = set(conn.execute(select(outbox_table.c.dedupe_key).where(outbox_table.c.dedupe_key.in_(sorted(wanted))))
               .scalars())
    return bool(wanted - have)


@paused_gc()   # each shop's records and items are freed by reference counting (see gcpause)
def scan_once(store: Store, *, now: datetime, rules: Rules | None = None,
              mail_transport: MailTransport | None = None, robots: Sequence[Robot] = ()) -> ScanReport:
    """Scan as of ``now``: new penalty events and escalation alerts, a shop at a time, then the
    day's digests and what this scan saw.

    ``rules`` (a rules workbook just loaded) is used and saved into the store with the record of
    what the scan saw, so every later render uses them too; without it the rules last saved are
    used.

    Only the records whose outcome can have changed since the last scan are decoded (``_plan``):
    a rescan that finds nothing new reads a few indexed columns and writes nothing. A full scan
    (the first one, new rules or 设置) goes through the store one shop at a time, ``SCAN_CHUNK``
    complaints at most (issue 17): a million stored complaints once took 7.6 GiB held at once.
    Each shop's events and alerts are committed with that shop; what the scan saw is recorded
    last, so a scan stopped half-way is done again in full, and the ids of events, mails and
    posts keep what it stored from being stored twice.
    """
    given = rules
    with store.engine.connect() as conn:
        view: StoreView = View(store, conn)
        if given is not None:
            view.memo("rules", lambda: given)
        rules = view.rules()
        settings = store.source_settings(conn)
        plan = _plan(store, conn, now=now, rules=rules, robots=robots, settings=settings)
        unfilled = set() if plan.full else store.unfilled_keys(conn)
        # a store's first scan has no stored event to look up before storing its own
        stored = conn.execute(select(penalty_events.c.event_id).limit(1)).first() is not None
        found = _Found(rules, robots, now, unfilled=unfilled, stored=stored)
        chunks = _live_shops(store, conn) if plan.full else _live_records(store, conn, plan.keys)
        for live in chunks:
            found.add(conn, live)
            conn.commit()
        if not plan.full and not plan.digests and _digest_due(conn, found.book, now.date()):
            plan.digests = True
        if plan.digests and not plan.full:
            # the digests count every open deadline, not only the ones that changed
            found.book = DigestBook(rules, robots)
            for live in _live_records(store, conn, _open_keys(store, conn, now, settings)):
                found.book.add(scan(live, now=now))
        count = found.records if plan.full else store.live_count(conn)
        open_states = found.book.states if plan.digests else found.states
        figures = {"投诉": count, "已逾期": open_states["overdue"], "即将到期": open_states["due_soon"]}
        rep = ScanReport(count, found.flagged, found.states["overdue"], states=dict(found.states),
                         scanned=found.records, full=plan.full, new_penalties=found.new_penalties,
                         queued_mails=found.mails, queued_posts=found.posts)
        if not plan.full:
            # the whole store's figures, not only what this scan looked at: counted on the indexes
            # (plus the rows not yet given the scan's columns, which this scan did look at)
            overdue, soon = store.open_counts(now, max(s.due_soon_hours for s in settings.values())
                                              if settings else DEFAULTS.due_soon_hours, conn)
            rep.overdue = overdue + found.unfilled["overdue"]
            rep.flagged = overdue + soon + found.unfilled["overdue"] + found.unfilled["due_soon"]
        if plan.full or found.records or plan.digests:
            if plan.digests:
                rep.queued_mails += ob.queue(conn, digests(found.book, rules, day=now.date(), figures=figures),
                                             now=now)
                rep.queued_posts += ob.queue_posts(conn, digest_posts(found.book, rules, robots, day=now.date(),
                                                                      figures=figures), now=now)
            store.save_named(SCAN_STATE, json.dumps({"now": now.isoformat(), "mark": plan.mark,
                                                      "fingerprint": plan.fingerprint}), now=now, conn=conn)
            if given is not None:
                # from now on every render (`sync --once` too) uses these rules; read and written
                # inside this transaction, after its first write, so that two scans saving the
                # same new rules at once store them once
                store.save_rules(given, now=now, conn=conn)
            conn.commit()
        elif given is not None:
            # Nothing changed and no deadline moved: nothing to write, not even this scan's time
            # (the next scan's window then starts at the last scan that found something: the
            # same outcome, since nothing happened in between); rules that differ are kept.
            store.save_rules(given, now=now, conn=conn)
            conn.commit()
    if mail_transport is not None:
        ob.send_due(store, mail_transport, now=now)
    return rep


class _Found:
    """What a scan finds, shop by shop: counts, the open items the digests list (``book``: a
    few per recipient, not every one), and each shop's new penalty events and escalation alerts
    written as it goes."""

    def __init__(self, rules: Rules, robots: Sequence[Robot], now: datetime, *, unfilled: set[str],
                 stored: bool) -> None:
        self.rules, self.robots, self.now = rules, robots, now
        self.done: set[str] | None = None   # record ids alerted before (escalate.alerted), read once
        self._unfilled = unfilled        # rows without the scan's columns (see scan_once)
        self.stored = stored             # whether any penalty event is stored yet
        self.heads, self.bases = rules.heads(), rules.bases()
        self.records = self.flagged = self.new_penalties = self.mails = self.posts = 0
        self.states: Counter[str] = Counter()
        self.unfilled: Counter[str] = Counter()
        self.book = DigestBook(rules, robots)

    def add(self, conn: Connection, live: list[dict[str, Any]]) -> None:
        """One shop's live records (or part of a big shop's): counted, their events and alerts stored."""
        items = scan(live, now=self.now)
        self.records += len(live)
        self.states.update(i.state for i in items)
        self.flagged += len(flagged(items))
        if self._unfilled:
            self.unfilled.update(i.state for i in items if i.record_id in self._unfilled)
        self.book.add(items)
        rules = self.rules
        evs = events_for(items, {r["record_id"]: r for r in live}, rules.penalties, self.heads,
                         tiers=rules.tiers, bases=self.bases)
        self.new_penalties += _store_events(conn, evs, self.now, stored=self.stored)
        if self.done is None:
            self.done = alerted(conn)
        mails, posts = alerts(live, rules, self.robots, self.done)
        self.mails += ob.queue(conn, mails, now=self.now)
        self.posts += ob.queue_posts(conn, posts, now=self.now)


def _store_events(conn: Connection, evs: list[PenaltyEvent], now: datetime, *, stored: bool) -> int:
    """Store the events not stored before (rescanning never doubles a penalty); ``stored``:
    whether the store may hold some of them already (not on its first scan)."""
    if not evs:
        return 0
    have: set[str] = set()
    if stored:
        ids = [e.event_id for e in evs]
        q = select(penalty_events.c.event_id).where(penalty_events.c.event_id.in_(bindparam("ids", expanding=True)))
        for i in range(0, len(ids), 500):   # SQLite's bound-parameter limit
            have.update(conn.execute(q, {"ids": ids[i:i + 500]}).scalars())
    new = []
    for e in evs:
        if e.event_id in have:
            continue
        have.add(e.event_id)
        new.append(dict(event_id=e.event_id, record_id=e.record_id, shop=e.shop, complaint_id=e.complaint_id,
                        rule_id=e.rule_id, kind=e.kind, day=e.day, person=e.person, dept=e.dept,
                        head=e.head, amount=e.amount, why=e.why, first_seen=now))
    # A scanner running at the same time may store some of these between our read and our
    # insert: those are skipped, not an error (see scheduler/idempotent.py).
    return insert_missing(conn, penalty_events, penalty_events.c.event_id, new)


def _live_shops(store: Store, conn: Connection) -> Iterator[list[dict[str, Any]]]:
    """Every live complaint, a shop at a time (a big shop ``SCAN_CHUNK`` at a time), in the order a
    whole snapshot gives them: shops in order, each shop's in the sheet's order."""
    for shop in sorted(store.shop_marks(conn)):
        for records, _conflicts in store.shop_records(shop, conn, size=SCAN_CHUNK):
            live = [r for r in records if not r["deleted"]]
            if live:
                yield live


def _live_records(store: Store, conn: Connection, keys: set[str]) -> Iterator[list[dict[str, Any]]]:
    """The live complaints of ``keys`` (record keys), a shop at a time, in ``records_for``'s order
    (a record key starts with its shop)."""
    by_shop: dict[str, list[str]] = {}
    for key in keys:
        by_shop.setdefault(key_shop(key), []).append(key)
    for shop in sorted(by_shop):
        live = [r for r in store.records_for(by_shop[shop], conn) if not r["deleted"]]
        if live:
            yield live


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
