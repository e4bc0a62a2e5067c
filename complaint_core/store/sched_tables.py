"""The scheduler's tables on the shared metadata: penalty events and the outbox (mails and robot posts)."""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, Float, Index, Integer, String, Table, Text

from .tables import metadata

penalty_events = Table(
    "penalty_events", metadata,
    Column("event_id", String(32), primary_key=True),   # deterministic: rescans never double
    Column("record_id", Text, nullable=False),
    Column("shop", Text),
    Column("complaint_id", Text),
    Column("rule_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("day", Date, nullable=False),
    Column("person", Text),
    Column("dept", Text),
    Column("head", Text),
    Column("amount", Float, nullable=False),
    Column("why", Text),
    Column("first_seen", DateTime, nullable=False),
    # a shop's lines in the order 处罚 lists them, and each shop's count, first and last id read
    # from the index alone (merged/penalty_parts.py: every write asks them)
    Index("ix_penalty_events_shop", "shop", "day", "event_id"),
)

outbox = Table(
    "outbox", metadata,
    Column("id", Integer, primary_key=True),
    Column("dedupe_key", Text, nullable=False, unique=True),  # person|kind|day
    Column("message_id", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body_text", Text, nullable=False),
    Column("body_html", Text, nullable=False),
    # pending -> sending (claimed, before connecting) -> in_data (committed just before the DATA
    # command) -> sent | failed | unknown; see scheduler/outbox.py
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", DateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    # when the current claim (sending) or DATA phase (in_data) began, and whose claim it is:
    # a restart tells a dead sender's stale claim from a live one by these two
    Column("claimed_at", DateTime),
    Column("claim_token", String(32)),
    # NULL or "mail": a mail to `recipient`; "bot": a group robot post, `recipient` is the robot's
    # name, body_text its text form, body_html its markdown form, and `mentions` a JSON list of
    # [name, mobile] to @ (see scheduler/robots.py)
    Column("channel", String(16)),
    Column("mentions", Text),
    # how many times the platform said "too fast": the wait before the next try grows with it,
    # and it is not an attempt (a rate-limited post is never given up)
    Column("rate_limited", Integer),
)

