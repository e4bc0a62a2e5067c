"""The outbox: every reminder arrives exactly once, even when the sender is killed mid-mail.

States (each change committed before the step it guards):

    pending --claim--> sending --just before DATA--> in_data --250--> sent
                          |                             |--lost reply--> unknown
                          |--4xx / 5xx----> pending (backoff) / failed

``sending`` means "claimed, the server has nothing yet": a sender killed there left a claim
that a later run finds stale (older than the transport's timeout) and puts back to pending, so
the mail still goes out. ``in_data`` means the server may have it: a later run finds it stale
and marks it ``unknown``, logged with its Message-ID and recipient and listed by
``complaint-desk mail list --state unknown``; it is never resent automatically (a double
reminder to a shop is worse than asking a manager to check the mailbox once), only by
``complaint-desk mail resend ID``. An idempotent transport (the .eml folder) redoes both.

Each claim carries a token: a run whose claim went stale and was taken over finds out before
DATA (``ClaimLost``) and stops, so two runs never both reach DATA for one mail.

Group robot posts (``channel = "bot"``, ``recipient`` = the robot's name) go through the same
states: ``in_data`` is committed just before the HTTP request. A platform's "too fast" puts the
post back to pending with a growing wait and no attempt limit (never dropped); a wrong key or
signature stops that robot for the run with one line, its posts pending for after the fix.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, select, update
from sqlalchemy.engine import Connection

from complaint_core.store import Store
from complaint_core.store.sched_tables import outbox

from .idempotent import insert_missing
from .mail import Mail, compose
from .robots import CHANNEL as CHANNEL_BOT
from .robots import Post
from .transport import (
    BeforeData,
    ClaimLost,
    Claims,
    MailTransport,
    PermanentFailure,
    RateLimited,
    SetupFailure,
    TemporaryFailure,
    UnknownOutcome,
)
from .webhook import OutgoingPost, PostTransport

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(minutes=1)
DEFAULT_SENDER = "complaint-desk@localhost"

PENDING, SENDING, IN_DATA, SENT, FAILED, UNKNOWN = "pending", "sending", "in_data", "sent", "failed", "unknown"
STATES = (PENDING, SENDING, IN_DATA, SENT, FAILED, UNKNOWN)
RESENDABLE = (UNKNOWN, FAILED)


@dataclass
class SendReport:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    unknown: int = 0
    recovered: int = 0      # dead senders' pre-DATA claims put back to pending this run
    lost_claims: int = 0    # our claim was taken over: stopped before DATA
    deferred: int = 0       # robot posts left pending this run (the robot's minute is full, or it said stop)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # not errors, but a person should know (posts written as files)

    def add(self, other: SendReport) -> SendReport:
        for f in ("sent", "retry", "failed", "unknown", "recovered", "lost_claims", "deferred"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.errors += other.errors
        self.notes += other.notes
        return self


MAIL_ROWS = outbox.c.channel.is_(None) | (outbox.c.channel == "mail")
BOT_ROWS = outbox.c.channel == CHANNEL_BOT
RATE_DELAY_CAP = 16   # minutes: DingTalk throttles a robot for about 10 minutes after its 20th post


def queue(conn: Connection, mails: list[Mail], *, now: datetime) -> int:
    """Insert mails not queued before (unique dedupe key); call inside the scan's transaction."""
    rows = [dict(dedupe_key=m.dedupe_key, message_id=m.message_id, recipient=m.recipient, subject=m.subject,
                 body_text=m.text, body_html=m.html, state=PENDING, attempts=0, next_at=now, created_at=now)
            for m in mails]
    return _insert_new(conn, rows)


def queue_posts(conn: Connection, posts: list[Post], *, now: datetime) -> int:
    """Insert robot posts not queued before, in the same outbox as the mails (same states)."""
    rows = [dict(dedupe_key=p.dedupe_key, message_id=p.message_id, recipient=p.robot, subject=p.title,
                 body_text=p.text, body_html=p.markdown, state=PENDING, attempts=0, next_at=now,
                 created_at=now, channel=CHANNEL_BOT, mentions=json.dumps([list(m) for m in p.mentions],
                                                                         ensure_ascii=False))
            for p in posts]
    return _insert_new(conn, rows)


def _insert_new(conn: Connection, rows: list[dict[str, Any]]) -> int:
    keys = [r["dedupe_key"] for r in rows]
    have: set[str] = set()
    # the keys as a parameter, not in the statement (SQLAlchemy keeps recent in_(list) values)
    q = select(outbox.c.dedupe_key).where(outbox.c.dedupe_key.in_(bindparam("keys", expanding=True)))
    for i in range(0, len(keys), 500):   # in chunks: SQLite takes a limited number of parameters
        have.update(r[0] for r in conn.execute(q, {"keys": keys[i:i + 500]}))
    # Read first so a rescan does not even try (and, on PostgreSQL, leave no gaps in the ids that
    # `mail list` shows); a concurrent scanner's rows are still skipped by insert_missing.
    return insert_missing(conn, outbox, outbox.c.dedupe_key, [r for r in rows if r["dedupe_key"] not in have])


def _warn_unknown(row_id: int, message_id: str, recipient: str, why: str) -> None:
    log.warning("发送结果未知，不会自动重发（%s）：Message-ID %s 收件人 %s；请核对（邮件服务器或群聊），"
                "确认未收到后用 complaint-desk mail resend %s", why, message_id, recipient, row_id)


def recover(store: Store, transport: Claims, *, now: datetime,
            where: ColumnElement[bool] | None = None) -> tuple[int, int]:
    """Settle claims left by dead senders (of the rows ``where`` selects, default: the mails);
    returns (put back to pending, marked unknown)."""
    ttl = transport.claim_ttl
    redo_all = transport.idempotent
    cutoff = now - ttl
    back = unknown = 0
    with store.begin() as c:
        stale = c.execute(select(outbox.c.id, outbox.c.state, outbox.c.claim_token, outbox.c.message_id,
                                 outbox.c.recipient, outbox.c.claimed_at).where(
            MAIL_ROWS if where is None else where,
            outbox.c.state.in_((SENDING, IN_DATA)),
            (outbox.c.claimed_at < cutoff) | outbox.c.claimed_at.is_(None))).all()
        for row in stale:
            # A claim without claimed_at was left by a version that claimed for the whole
            # conversation: it may have passed DATA, so it counts as in_data.
            past_data = row.state == IN_DATA or row.claimed_at is None
            same_claim = (outbox.c.id == row.id) & (outbox.c.state == row.state) & (
                outbox.c.claim_token == row.claim_token if row.claim_token else outbox.c.claim_token.is_(None))
            if past_data and not redo_all:
                # Keep the token: should that sender still be alive and get its 250, it records `sent`.
                if c.execute(update(outbox).where(same_claim).values(
                        state=UNKNOWN, last_error="发送进程在发出之后中断，对方可能已收到")).rowcount:
                    _warn_unknown(row.id, row.message_id, row.recipient, "发送进程在发出之后中断")
                    unknown += 1
            elif c.execute(update(outbox).where(same_claim).values(
                    state=PENDING, claim_token=None, claimed_at=None, next_at=now)).rowcount:
                back += 1
    return back, unknown


def _due(store: Store, where: ColumnElement[bool], now: datetime) -> list[dict[str, Any]]:
    with store.begin() as c:
        return [dict(r._mapping) for r in c.execute(select(outbox).where(
            where, outbox.c.state == PENDING, outbox.c.next_at <= now).order_by(outbox.c.id))]


def send_due(store: Store, transport: MailTransport, *, now: datetime, sender: str = "",
             zone: tzinfo | None = None) -> SendReport:
    """Send the due mails; ``zone`` is the shop's time zone for the Date header."""
    # The From a shop's mail server accepts: the configured sender, else the transport's own.
    sender = sender or str(getattr(transport, "sender", "")) or DEFAULT_SENDER   # only SMTP has one
    rep = SendReport()
    rep.recovered, rep.unknown = recover(store, transport, now=now)
    for row in _due(store, MAIL_ROWS, now):
        mail = Mail(row["dedupe_key"], row["recipient"], row["subject"], row["body_text"], row["body_html"])
        msg = compose(mail, sender=sender, now=now, zone=zone)
        outcome = _attempt(store, row, now, rep, functools.partial(transport.send, msg))
        if outcome == "setup":
            # Wrong password, no STARTTLS: every mail would fail alike. One clear error, no loop
            # over the rest; they all go out once desk.toml or the server is fixed.
            return rep
    return rep


def send_posts(store: Store, transports: Mapping[str, PostTransport], *, now: datetime,
               per_minute: Mapping[str, int] | None = None) -> SendReport:
    """Post what is due to each robot's group (``transports``: robot name -> transport).

    A robot that answers "too fast" or "wrong key" gets no more posts this run; the others and
    the mails go on. At most ``per_minute[name]`` posts a minute per robot (the platforms' 20):
    the rest wait, pending, for the next run.
    """
    rep = SendReport()
    for name, way in transports.items():
        back, unknown = recover(store, way, now=now, where=BOT_ROWS & (outbox.c.recipient == name))
        rep.recovered += back
        rep.unknown += unknown
    blocked: set[str] = set()
    posted: dict[str, int] = {}
    for row in _due(store, BOT_ROWS, now):
        name = row["recipient"]
        tr = transports.get(name)
        if tr is None:
            _orphan(store, row, now, rep)
            continue
        if name in blocked:
            rep.deferred += 1
            continue
        limit = (per_minute or {}).get(name)
        if limit is not None:
            if name not in posted:
                posted[name] = _posted_last_minute(store, name, now)
            if posted[name] >= limit:
                blocked.add(name)
                rep.deferred += 1
                continue
        post = OutgoingPost(_file_key(row["dedupe_key"]), row["subject"], row["body_text"], row["body_html"],
                            tuple(tuple(m) for m in json.loads(row["mentions"] or "[]")))
        outcome = _attempt(store, row, now, rep, functools.partial(tr.send, post))
        posted[name] = posted.get(name, 0) + 1
        if outcome in ("setup", "rate"):
            blocked.add(name)
    return rep


def _file_key(dedupe_key: str) -> str:
    from .mail import safe_key
    return safe_key(dedupe_key)


def _posted_last_minute(store: Store, name: str, now: datetime) -> int:
    with store.begin() as c:
        return int(c.execute(select(func.count()).select_from(outbox).where(
            BOT_ROWS, outbox.c.recipient == name, outbox.c.sent_at > now - timedelta(minutes=1))).scalar() or 0)


def _orphan(store: Store, row: dict[str, Any], now: datetime, rep: SendReport) -> None:
    # The robot's [[bot]] section was removed: nobody to post to. Failed, not deleted, so
    # `mail list --state failed` shows it and `mail resend` can queue it once the section is back.
    error = f"机器人“{row['recipient']}”已不在 desk.toml 的 [[bot]] 中，消息未发出"
    with store.begin() as c:
        c.execute(update(outbox).where(outbox.c.id == row["id"], outbox.c.state == PENDING)
                  .values(state=FAILED, last_error=error))
    rep.failed += 1
    rep.errors.append(error)


def _attempt(store: Store, row: dict[str, Any], now: datetime, rep: SendReport,
             send: Callable[[BeforeData], None]) -> str | None:
    """Claim one row, send it, record the outcome in the row and in ``rep``.

    Returns "setup" (the transport cannot work until a person fixes it), "rate" (the platform
    said too fast) or None, so the caller knows whether to go on with this transport.
    """
    token = uuid.uuid4().hex
    with store.begin() as c:   # the claim, committed before connecting: only one run owns it
        claimed = c.execute(update(outbox).where(outbox.c.id == row["id"], outbox.c.state == PENDING)
                            .values(state=SENDING, attempts=row["attempts"] + 1, claimed_at=now,
                                    claim_token=token)).rowcount
    if not claimed:
        return None
    passed: list[bool] = []
    before = _before_data(store, row["id"], token, now, passed)
    attempts = row["attempts"] + 1
    state, error, next_at = SENT, None, row["next_at"]
    try:
        send(before)
    except ClaimLost:
        rep.lost_claims += 1
        return None
    except RateLimited as e:
        # Never dropped, and not counted as an attempt: only a longer wait each time.
        hits = (row.get("rate_limited") or 0) + 1
        next_at = now + BASE_DELAY * min(2 ** min(hits - 1, 10), RATE_DELAY_CAP)
        _finish(store, row["id"], token, PENDING, str(e), next_at, None, attempts=row["attempts"], rate_limited=hits)
        rep.errors.append(str(e))
        rep.retry += 1
        return "rate"
    except TemporaryFailure as e:
        state = PENDING if attempts < MAX_ATTEMPTS else FAILED
        error, next_at = str(e), now + BASE_DELAY * (2 ** (attempts - 1))
    except UnknownOutcome as e:
        state, error = UNKNOWN, str(e)
        _warn_unknown(row["id"], row["message_id"], row["recipient"], str(e))
    except SetupFailure as e:
        # The setting's fault, not the message's: not counted as an attempt either.
        _finish(store, row["id"], token, PENDING, str(e), row["next_at"], None, attempts=row["attempts"])
        rep.errors.append(str(e))
        return "setup"
    except PermanentFailure as e:
        state, error = FAILED, str(e)
    except Exception as e:   # noqa: BLE001 - a surprise must not leave the row claimed or stop the run
        log.exception("发送时出现意外错误（outbox %s）", row["id"])
        error = f"意外错误：{type(e).__name__}: {e}"
        if passed:   # it may have gone out: never again automatically
            state = UNKNOWN
            _warn_unknown(row["id"], row["message_id"], row["recipient"], error)
        else:
            state = PENDING if attempts < MAX_ATTEMPTS else FAILED
            next_at = now + BASE_DELAY * (2 ** (attempts - 1))
    _finish(store, row["id"], token, state, error, next_at, now if state == SENT else None)
    if error:
        rep.errors.append(error if row.get("channel") == CHANNEL_BOT else f"{row['recipient']}: {error}")
    attr = {SENT: "sent", PENDING: "retry", FAILED: "failed", UNKNOWN: "unknown"}[state]
    setattr(rep, attr, getattr(rep, attr) + 1)
    return None


def _before_data(store: Store, row_id: int, token: str, now: datetime, passed: list[bool]) -> BeforeData:
    def commit_in_data() -> None:
        # The point of no return: committed before DATA (or the robot's request), so a crash
        # after it is never resent.
        with store.begin() as c:
            moved = c.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.state == SENDING,
                                                   outbox.c.claim_token == token)
                              .values(state=IN_DATA, claimed_at=now)).rowcount
        if not moved:
            raise ClaimLost(f"outbox {row_id}")
        passed.append(True)
    return commit_in_data


def _finish(store: Store, row_id: int, token: str, state: str, error: str | None, next_at: datetime,
            sent_at: datetime | None, **more: Any) -> None:
    # Only the claim's owner records the outcome (a recovered row may already be someone else's).
    values: dict[str, Any] = dict(state=state, last_error=error, next_at=next_at, sent_at=sent_at, **more)
    if state != UNKNOWN:
        values.update(claim_token=None, claimed_at=None)
    with store.begin() as c:
        c.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.claim_token == token).values(**values))


def states(store: Store) -> dict[str, str]:
    with store.begin() as c:
        return {r.dedupe_key: r.state for r in c.execute(select(outbox.c.dedupe_key, outbox.c.state))}


def listing(store: Store, state: str | None = None) -> list[dict[str, Any]]:
    """Outbox rows for people (newest first), optionally of one state."""
    cols = [outbox.c.id, outbox.c.state, outbox.c.recipient, outbox.c.subject, outbox.c.message_id,
            outbox.c.attempts, outbox.c.created_at, outbox.c.sent_at, outbox.c.last_error, outbox.c.channel]
    q = select(*cols).order_by(outbox.c.id.desc())
    if state:
        q = q.where(outbox.c.state == state)
    with store.begin() as c:
        return [dict(r._mapping) for r in c.execute(q)]


@dataclass(frozen=True)
class Resend:
    """What ``mail resend ID`` did: ``state`` is the mail's state before (None: no such mail);
    ``queued`` says whether it went back to pending (only ``unknown`` and ``failed`` ones do)."""

    row_id: int
    state: str | None
    queued: bool


def resend(store: Store, row_id: int, *, now: datetime) -> Resend:
    """Put an ``unknown`` or ``failed`` mail back to pending after a person checked; a mail in
    another state, or no mail with that id, is left as it is (``Resend.queued`` is False)."""
    with store.begin() as c:
        row = c.execute(select(outbox.c.state).where(outbox.c.id == row_id)).first()
        if row is None:
            return Resend(row_id, None, queued=False)
        if row.state not in RESENDABLE:
            return Resend(row_id, str(row.state), queued=False)
        c.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.state == row.state).values(
            state=PENDING, attempts=0, rate_limited=None, next_at=now, claim_token=None, claimed_at=None,
            last_error=f"{now:%Y-%m-%d %H:%M} 由人工重新排队（原状态 {row.state}）"))
        return Resend(row_id, str(row.state), queued=True)
