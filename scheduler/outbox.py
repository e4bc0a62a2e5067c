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
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from complaint_core.store.sched_tables import outbox

from .idempotent import insert_missing
from .mail import Mail, compose
from .transport import ClaimLost, PermanentFailure, SetupFailure, TemporaryFailure, UnknownOutcome

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(minutes=1)
DEFAULT_CLAIM_TTL = timedelta(seconds=30)
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
    errors: list[str] = field(default_factory=list)


def queue(conn: Connection, mails: list[Mail], *, now: datetime) -> int:
    """Insert mails not queued before (unique dedupe key); call inside the scan's transaction."""
    have = {r[0] for r in conn.execute(select(outbox.c.dedupe_key).where(
        outbox.c.dedupe_key.in_([m.dedupe_key for m in mails])))} if mails else set()
    # Read first so a rescan does not even try (and, on PostgreSQL, leave no gaps in the ids that
    # `mail list` shows); a concurrent scanner's rows are still skipped by insert_missing.
    rows = [dict(dedupe_key=m.dedupe_key, message_id=m.message_id, recipient=m.recipient, subject=m.subject,
                 body_text=m.text, body_html=m.html, state=PENDING, attempts=0, next_at=now, created_at=now)
            for m in mails if m.dedupe_key not in have]
    return insert_missing(conn, outbox, outbox.c.dedupe_key, rows)


def _warn_unknown(row_id: int, message_id: str, recipient: str, why: str) -> None:
    log.warning("邮件结果未知，不会自动重发（%s）：Message-ID %s 收件人 %s；请在邮件服务器上核对，"
                "确认未收到后用 complaint-desk mail resend %s", why, message_id, recipient, row_id)


def recover(store: Any, transport: Any, *, now: datetime) -> tuple[int, int]:
    """Settle claims left by dead senders; returns (put back to pending, marked unknown)."""
    ttl: timedelta = getattr(transport, "claim_ttl", DEFAULT_CLAIM_TTL)
    redo_all = bool(getattr(transport, "idempotent", False))
    cutoff = now - ttl
    back = unknown = 0
    with store.begin() as c:
        stale = c.execute(select(outbox.c.id, outbox.c.state, outbox.c.claim_token, outbox.c.message_id,
                                 outbox.c.recipient, outbox.c.claimed_at).where(
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
                        state=UNKNOWN, last_error="发送进程在 DATA 之后中断，服务器可能已收到")).rowcount:
                    _warn_unknown(row.id, row.message_id, row.recipient, "发送进程在 DATA 之后中断")
                    unknown += 1
            elif c.execute(update(outbox).where(same_claim).values(
                    state=PENDING, claim_token=None, claimed_at=None, next_at=now)).rowcount:
                back += 1
    return back, unknown


def send_due(store: Any, transport: Any, *, now: datetime, sender: str = "") -> SendReport:
    # The From a shop's mail server accepts: the configured sender, else the transport's own.
    sender = sender or getattr(transport, "sender", "") or DEFAULT_SENDER
    rep = SendReport()
    rep.recovered, rep.unknown = recover(store, transport, now=now)
    with store.begin() as c:
        rows = [dict(r._mapping) for r in c.execute(select(outbox).where(
            outbox.c.state == PENDING, outbox.c.next_at <= now).order_by(outbox.c.id))]
    for row in rows:
        token = uuid.uuid4().hex
        with store.begin() as c:   # the claim, committed before connecting: only one run owns it
            claimed = c.execute(update(outbox).where(outbox.c.id == row["id"], outbox.c.state == PENDING)
                                .values(state=SENDING, attempts=row["attempts"] + 1, claimed_at=now,
                                        claim_token=token)).rowcount
        if not claimed:
            continue
        mail = Mail(row["dedupe_key"], row["recipient"], row["subject"], row["body_text"], row["body_html"])
        state, error, next_at = SENT, None, row["next_at"]
        try:
            transport.send(compose(mail, sender=sender, now=now), _before_data(store, row["id"], token, now))
        except ClaimLost:
            rep.lost_claims += 1
            continue
        except TemporaryFailure as e:
            attempts = row["attempts"] + 1
            state = PENDING if attempts < MAX_ATTEMPTS else FAILED
            error, next_at = str(e), now + BASE_DELAY * (2 ** (attempts - 1))
        except UnknownOutcome as e:
            state, error = UNKNOWN, str(e)
            _warn_unknown(row["id"], row["message_id"], row["recipient"], str(e))
        except SetupFailure as e:
            _finish(store, row["id"], token, PENDING, str(e), row["next_at"], None)
            rep.errors.append(str(e))
            # Wrong password, no STARTTLS: every mail would fail alike. One clear error, no loop
            # over the rest; they all go out once desk.toml or the server is fixed.
            return rep
        except PermanentFailure as e:
            state, error = FAILED, str(e)
        _finish(store, row["id"], token, state, error, next_at, now if state == SENT else None)
        if error:
            rep.errors.append(f"{row['recipient']}: {error}")
        attr = {SENT: "sent", PENDING: "retry", FAILED: "failed", UNKNOWN: "unknown"}[state]
        setattr(rep, attr, getattr(rep, attr) + 1)
    return rep


def _before_data(store: Any, row_id: int, token: str, now: datetime) -> Any:
    def commit_in_data() -> None:
        # The point of no return: committed before DATA, so a crash after it is never resent.
        with store.begin() as c:
            moved = c.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.state == SENDING,
                                                   outbox.c.claim_token == token)
                              .values(state=IN_DATA, claimed_at=now)).rowcount
        if not moved:
            raise ClaimLost(f"outbox {row_id}")
    return commit_in_data


def _finish(store: Any, row_id: int, token: str, state: str, error: str | None, next_at: datetime,
            sent_at: datetime | None) -> None:
    # Only the claim's owner records the outcome (a recovered row may already be someone else's).
    values: dict[str, Any] = dict(state=state, last_error=error, next_at=next_at, sent_at=sent_at)
    if state != UNKNOWN:
        values.update(claim_token=None, claimed_at=None)
    with store.begin() as c:
        c.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.claim_token == token).values(**values))


def states(store: Any) -> dict[str, str]:
    with store.begin() as c:
        return {r.dedupe_key: r.state for r in c.execute(select(outbox.c.dedupe_key, outbox.c.state))}


def listing(store: Any, state: str | None = None) -> list[dict[str, Any]]:
    """Outbox rows for people (newest first), optionally of one state."""
    cols = [outbox.c.id, outbox.c.state, outbox.c.recipient, outbox.c.subject, outbox.c.message_id,
            outbox.c.attempts, outbox.c.created_at, outbox.c.sent_at, outbox.c.last_error]
    q = select(*cols).order_by(outbox.c.id.desc())
    if state:
        q = q.where(outbox.c.state == state)
    with store.begin() as c:
        return [dict(r._mapping) for r in c.execute(q)]


def resend(store: Any, row_id: int, *, now: datetime) -> str | None:
    """Put an ``unknown`` or ``failed`` mail back to pending after a person checked; the old state,
    or None when there is no such mail. Raises ValueError for a mail in any other state."""
    with store.begin() as c:
        row = c.execute(select(outbox.c.state).where(outbox.c.id == row_id)).first()
        if row is None:
            return None
        if row.state not in RESENDABLE:
            raise ValueError(row.state)
        c.execute(update(outbox).where(outbox.c.id == row_id, outbox.c.state == row.state).values(
            state=PENDING, attempts=0, next_at=now, claim_token=None, claimed_at=None,
            last_error=f"{now:%Y-%m-%d %H:%M} 由人工重新排队（原状态 {row.state}）"))
        return str(row.state)
