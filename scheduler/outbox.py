"""The outbox: pending -> sending -> sent / failed / unknown, exactly once across restarts.

A row is marked ``sending`` (committed) before the SMTP conversation; if the process dies or
the reply after DATA is lost, the row stays ``sending``/``unknown`` and is NOT resent: a
missing reminder is cheaper than a double one, and the Message-ID lets a person check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from complaint_core.store.sched_tables import outbox

from .mail import Mail, compose
from .transport import AuthFailure, PermanentFailure, TemporaryFailure, UnknownOutcome

MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(minutes=1)


@dataclass
class SendReport:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    unknown: int = 0
    errors: list[str] = field(default_factory=list)


def queue(conn: Connection, mails: list[Mail], *, now: datetime) -> int:
    """Insert mails not queued before (unique dedupe key); call inside the scan's transaction."""
    have = {r[0] for r in conn.execute(select(outbox.c.dedupe_key).where(
        outbox.c.dedupe_key.in_([m.dedupe_key for m in mails])))} if mails else set()
    n = 0
    for m in mails:
        if m.dedupe_key in have:
            continue
        conn.execute(insert(outbox).values(dedupe_key=m.dedupe_key, message_id=m.message_id, recipient=m.recipient,
                                           subject=m.subject, body_text=m.text, body_html=m.html, state="pending",
                                           attempts=0, next_at=now, created_at=now))
        n += 1
    return n


def send_due(store: Any, transport: Any, *, now: datetime, sender: str = "complaint-desk@localhost") -> SendReport:
    rep = SendReport()
    with store.begin() as c:
        rows = [dict(r._mapping) for r in c.execute(select(outbox).where(
            outbox.c.state == "pending", outbox.c.next_at <= now).order_by(outbox.c.id))]
    for row in rows:
        with store.begin() as c:   # claim it: only one sender may move it to sending
            claimed = c.execute(update(outbox).where(outbox.c.id == row["id"], outbox.c.state == "pending")
                                .values(state="sending", attempts=row["attempts"] + 1)).rowcount
        if not claimed:
            continue
        mail = Mail(row["dedupe_key"], row["recipient"], row["subject"], row["body_text"], row["body_html"])
        state, error, next_at = "sent", None, row["next_at"]
        try:
            transport.send(compose(mail, sender=sender, now=now))
        except TemporaryFailure as e:
            attempts = row["attempts"] + 1
            state = "pending" if attempts < MAX_ATTEMPTS else "failed"
            error, next_at = str(e), now + BASE_DELAY * (2 ** (attempts - 1))
        except UnknownOutcome as e:
            state, error = "unknown", str(e)
        except AuthFailure as e:
            _finish(store, row["id"], "pending", str(e), row["next_at"], None)
            rep.errors.append(str(e))
            return rep   # wrong password: one clear error, no loop over the rest
        except PermanentFailure as e:
            state, error = "failed", str(e)
        _finish(store, row["id"], state, error, next_at, now if state == "sent" else None)
        if error:
            rep.errors.append(f"{row['recipient']}: {error}")
        attr = {"sent": "sent", "pending": "retry", "failed": "failed", "unknown": "unknown"}[state]
        setattr(rep, attr, getattr(rep, attr) + 1)
    return rep


def _finish(store: Any, row_id: int, state: str, error: str | None, next_at: datetime,
            sent_at: datetime | None) -> None:
    with store.begin() as c:
        c.execute(update(outbox).where(outbox.c.id == row_id).values(state=state, last_error=error,
                                                                      next_at=next_at, sent_at=sent_at))


def states(store: Any) -> dict[str, str]:
    with store.begin() as c:
        return {r.dedupe_key: r.state for r in c.execute(select(outbox.c.dedupe_key, outbox.c.state))}
