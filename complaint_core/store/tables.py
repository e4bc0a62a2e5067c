"""The store's tables (SQLAlchemy Core), shared by the daemon and the scheduler.

Every row of every shop file is kept as a *source row* with its provenance and full
version history; the merged record of a complaint is derived from its source rows, so
merging is idempotent and does not depend on the order files arrive in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

sources = Table(
    "sources", metadata,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False, unique=True),
    Column("shop", Text),
    Column("content_hash", String(64)),
    Column("size", BigInteger),   # bytes: a file past 2 GiB is refused, not an overflow
    Column("mtime", Float),
    Column("rows", Integer, default=0),
    Column("status", String(16), nullable=False),   # ok | error | conflict_copy | missing
    Column("error", Text),
    Column("attempts", Integer, default=0),
    Column("next_try", DateTime),
    Column("last_read", DateTime),
    Column("first_seen", DateTime),
    # the file's own 设置 (and 节假日) as the reader saw them (store/dcjson.py): every deadline
    # of this file's complaints is computed with these, never with another shop's
    Column("settings", Text),
)

source_rows = Table(
    "source_rows", metadata,
    Column("id", Integer, primary_key=True),
    Column("source_path", Text, nullable=False),
    Column("sheet", Text, nullable=False),
    Column("row", Integer, nullable=False),
    Column("shop", Text, nullable=False),
    Column("complaint_id", Text),
    Column("record_key", Text, nullable=False, index=True),
    Column("content_hash", String(64), nullable=False),
    Column("data", Text, nullable=False),            # JSON of the normalised values
    Column("updated_at", DateTime),
    Column("file_mtime", Float),
    Column("version", Integer, nullable=False, default=1),
    Column("first_seen", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    # what recognises the row after the shop re-sorts its sheet (codec.anchor)
    Column("anchor", String(32)),
    # this version's deadlines as the engine computed them once, with the file's own 设置
    Column("due_contact", DateTime),
    Column("due_feedback", DateTime),
    Column("due_followup", DateTime),
    # what the overdue scan needs besides the deadlines, taken from the row at ingest: when each
    # deadline was met (feedback: 反馈时间 or 解决时间, whichever came first) and whether the
    # complaint has no deadlines at all (判定不成立). The scan is then an indexed query on these
    # columns, not a decode of every stored row (docs/performance.md, section 5).
    Column("done_contact", DateTime),
    Column("done_feedback", DateTime),
    Column("done_followup", DateTime),
    Column("no_deadlines", Boolean),   # NULL: stored by a version before these columns (backfilled)
    # a row is matched across saves by its record key (rows move when a shop sorts or
    # deletes), so (path, row) is not unique over time: only an index
    Index("ix_source_rows_path", "source_path"),
)


def open_predicate(kind: str) -> Any:
    """A live stored row whose ``kind`` deadline (contact, feedback, followup) is not met yet."""
    c = source_rows.c
    return c[f"done_{kind}"].is_(None) & c.deleted.is_(False) & c.no_deadlines.is_(False)


# Partial and covering: only open deadlines are indexed (in a real chain a few hundred, so
# storing a shop's rows barely pays for them), and the scan's query reads the index alone.
for _kind in ("contact", "feedback", "followup"):
    Index(f"ix_source_rows_open_{_kind}", source_rows.c[f"due_{_kind}"], source_rows.c.record_key,
          source_rows.c[f"done_{_kind}"], source_rows.c.deleted, source_rows.c.no_deadlines,
          sqlite_where=open_predicate(_kind), postgresql_where=open_predicate(_kind))
# the complaints still in a shop's file (how many: ScanReport.records); partial, so that the
# planner never takes it for the open-deadline queries above
Index("ix_source_rows_live", source_rows.c.record_key, sqlite_where=source_rows.c.deleted.is_(False),
      postgresql_where=source_rows.c.deleted.is_(False))
# rows written without the scan's columns (an older version): few, found without a table scan
Index("ix_source_rows_unfilled", source_rows.c.record_key, sqlite_where=source_rows.c.no_deadlines.is_(None),
      postgresql_where=source_rows.c.no_deadlines.is_(None))

# what each shop's rows are now, from the index alone (Store.shop_marks): rows are never
# removed and every change to one raises its version, so (rows, sum of versions, last id) moves
# whenever anything a sheet shows of that shop's complaints moves, and only then
Index("ix_source_rows_shop_version", source_rows.c.shop, source_rows.c.version)

# row_versions.data of the version a file holds now: its JSON is source_rows.data (same file and
# key), kept once. A complaint's JSON is most of what a merge writes; stored twice it was 40% of
# a first merge's store (issue 17). It is copied into its version when a newer one replaces it
# (store/ingest.py).
CURRENT = ""

row_versions = Table(
    "row_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("source_path", Text, nullable=False),
    Column("sheet", Text, nullable=False),
    Column("row", Integer, nullable=False),
    Column("record_key", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("seen_at", DateTime, nullable=False),
    Column("due_contact", DateTime),
    Column("due_feedback", DateTime),
    Column("due_followup", DateTime),
    Index("ix_row_versions_key", "source_path", "record_key"),
)

# One row per shop file: the file's findings as one JSON array, written in the reader's child.
# A merge of 100 shops has ~170,000 findings; one row each cost more than reading the files.
file_findings = Table(
    "file_findings", metadata,
    Column("source_path", Text, primary_key=True),
    Column("shop", Text),
    Column("data", Text, nullable=False),   # [[sheet, row, cell, field, severity, code, message], ...]
    # codec.content_hash of ``data``: a write of the merged workbook asks it of every file, and
    # reads the findings themselves only of a file whose encoded rows it does not keep (a shop's
    # save re-read 10 MB of JSON to hash it). NULL: stored by an older version (worked out then)
    Column("digest", String(64)),
)

# Before 0.2: one row per finding. Kept so open_store can move an old store's findings over.
findings = Table(
    "findings", metadata,
    Column("id", Integer, primary_key=True),
    Column("source_path", Text, nullable=False, index=True),
    Column("shop", Text),
    Column("sheet", Text),
    Column("row", Integer),
    Column("cell", String(16)),
    Column("field", String(64)),
    Column("severity", String(8)),
    Column("code", String(64)),
    Column("message", Text),
)

# A record whose key changed while the shop edited it in place (an id typed into a row that had
# none): a merged workbook written before still shows the old reference, whose edits follow.
record_aliases = Table(
    "record_aliases", metadata,
    Column("old_ref", String(32), primary_key=True),
    Column("new_ref", String(32), nullable=False),
    Column("seen_at", DateTime, nullable=False),
)

manager_edits = Table(
    "manager_edits", metadata,
    Column("id", Integer, primary_key=True),
    Column("sheet", Text, nullable=False),
    Column("row_key", Text, nullable=False),
    Column("column", String(64), nullable=False),
    Column("value", Text),
    Column("seen_at", DateTime, nullable=False),
    UniqueConstraint("sheet", "row_key", "column", name="uq_manager_edit"),
)


# The merged workbook as the daemon last wrote it: when the file still has exactly this
# stamp, no manager has saved it since, and the read-back of their cells can be skipped.
merged_files = Table(
    "merged_files", metadata,
    Column("path", Text, primary_key=True),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
)


# What is chain-wide (penalty rules, reminder times, staff directory), saved whenever a command
# loads the rules workbook: a render with no rules workbook at hand (`sync --once`) still shows
# the same 处罚 and 汇总 as the scan that wrote them.
chain_rules = Table(
    "chain_rules", metadata,
    Column("name", String(64), primary_key=True),
    Column("data", Text, nullable=False),
    Column("saved_at", DateTime, nullable=False),
)
