"""Put one shop file's rows into the store: provenance, version history, deletions, findings.

Everything for one file happens in one transaction, so a killed daemon leaves the store with
either the old or the new state of that file, never half of it. Rows are compared by a cheap
content hash, so an unchanged row costs one dict lookup and no write.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from ..model import ComplaintTable, Finding
from . import tables as t
from .bulk import insert_rows
from .codec import Prepared, prepare, record_key, shop_of

__all__ = ["ingest_prepared", "ingest_table", "mark_missing", "record_failure", "shop_of", "upsert_source"]
from .db import Store

# the column order of the tuples ingest_prepared builds (one tuple per stored row)
_ROW_COLUMNS = ("source_path", "sheet", "row", "shop", "complaint_id", "record_key", "content_hash", "data",
                "updated_at", "file_mtime", "version", "first_seen", "last_seen", "deleted")
_VERSION_COLUMNS = ("source_path", "sheet", "row", "record_key", "version", "content_hash", "data", "deleted",
                    "seen_at")


def upsert_source(c: Connection, path: str, **values: Any) -> None:
    found = c.execute(select(t.sources.c.id).where(t.sources.c.path == path)).first()
    if found:
        c.execute(update(t.sources).where(t.sources.c.id == found.id).values(**values))
    else:
        values.setdefault("first_seen", values.get("last_read"))
        c.execute(insert(t.sources).values(path=path, **values))


def ingest_table(store: Store, path: Path, table: ComplaintTable, findings: list[Finding], *,
                 file_hash: str, size: int, mtime: float, now: datetime) -> dict[str, int]:
    """Store the rows of ``table`` read from ``path``; returns counts of new/changed/deleted rows."""
    return ingest_prepared(store, path, prepare(table, findings, path), file_hash=file_hash, size=size,
                           mtime=mtime, now=now)


def ingest_prepared(store: Store, path: Path, prepared: Prepared, *, file_hash: str, size: int, mtime: float,
                    now: datetime) -> dict[str, int]:
    """Store a file ``codec.prepare`` made (in the reader's child): one transaction."""
    key = str(path)
    counts = {"new": 0, "changed": 0, "deleted": 0, "same": 0}
    with store.begin() as c:
        old = {r.record_key: r for r in c.execute(
            select(t.source_rows.c.id, t.source_rows.c.sheet, t.source_rows.c.row,
                   t.source_rows.c.content_hash, t.source_rows.c.version, t.source_rows.c.deleted,
                   t.source_rows.c.record_key).where(t.source_rows.c.source_path == key))}
        new_rows: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        versions: list[dict[str, Any]] = []
        seen: set[str] = set()
        shop = None
        for row_no, shop, cid, upd, data, h, sheet in prepared.rows:
            # a row without an id is keyed by where it is: on a second sheet, the sheet too
            where = key if sheet == prepared.sheet else f"{key}!{sheet}"
            rkey = record_key(shop, cid, where, row_no)
            if rkey in seen:
                # the same id twice in one file (the validator reports it): keep both rows
                rkey = record_key(shop, None, where, row_no)
                if rkey in seen:   # two tables side by side on one sheet share their rows
                    rkey = record_key(shop, None, f"{where}~{len(seen)}", row_no)
            seen.add(rkey)
            prev = old.get(rkey)
            if prev is None:
                new_rows.append((key, sheet, row_no, shop, cid, rkey, h, data, upd, mtime, 1, now, now, False))
                versions.append((key, sheet, row_no, rkey, 1, h, data, False, now))
                counts["new"] += 1
            elif prev.content_hash != h or prev.deleted or prev.row != row_no or prev.sheet != sheet:
                v = prev.version + 1
                changed.append(dict(shop=shop, complaint_id=cid, record_key=rkey, content_hash=h, data=data,
                                    updated_at=upd, file_mtime=mtime, last_seen=now, deleted=False,
                                    b_id=prev.id, version=v, row=row_no, sheet=sheet))
                versions.append((key, sheet, row_no, rkey, v, h, data, False, now))
                counts["changed"] += 1
            else:
                counts["same"] += 1
        # A row that vanished from the shop's file is marked deleted, never dropped: its
        # history stays and a manager can still see it.
        gone = [r for k, r in old.items() if k not in seen and not r.deleted]
        _mark_deleted(c, gone, now)
        for r in gone:
            versions.append((key, r.sheet, r.row, r.record_key, r.version + 1, r.content_hash, "{}", True, now))
        counts["deleted"] = len(gone)
        insert_rows(c, t.source_rows, _ROW_COLUMNS, new_rows)
        if changed:
            cols = [k for k in changed[0] if k != "b_id"]
            stmt = (update(t.source_rows).where(t.source_rows.c.id == bindparam("b_id"))
                    .values({k: bindparam(k) for k in cols}))
            c.execute(stmt, changed)
        insert_rows(c, t.row_versions, _VERSION_COLUMNS, versions)
        if counts["same"]:
            c.execute(update(t.source_rows).where(t.source_rows.c.source_path == key)
                      .where(t.source_rows.c.deleted.is_(False)).values(last_seen=now))
        c.execute(delete(t.file_findings).where(t.file_findings.c.source_path == key))
        c.execute(insert(t.file_findings).values(source_path=key, shop=shop or path.parent.name,
                                                 data=prepared.findings_json))
        upsert_source(c, key, shop=shop or path.parent.name, content_hash=file_hash, size=size,
                      mtime=mtime, rows=len(prepared.rows), status="ok", error=None, attempts=0,
                      next_try=None, last_read=now)
    return counts


def record_failure(store: Store, path: Path, reason: str, *, status: str, attempts: int,
                   next_try: datetime | None, now: datetime) -> None:
    """A file that cannot be read: its last good rows stay, the reason goes on 来源."""
    with store.begin() as c:
        upsert_source(c, str(path), shop=path.parent.name, status=status, error=reason,
                      attempts=attempts, next_try=next_try, last_read=now)


def mark_missing(store: Store, path: str, *, now: datetime) -> None:
    """The file is gone from the folder: its rows are marked deleted (history kept)."""
    with store.begin() as c:
        rows = list(c.execute(select(t.source_rows).where(t.source_rows.c.source_path == path)
                              .where(t.source_rows.c.deleted.is_(False))))
        _mark_deleted(c, rows, now)
        insert_rows(c, t.row_versions, _VERSION_COLUMNS, [
            (path, r.sheet, r.row, r.record_key, r.version + 1, r.content_hash, "{}", True, now) for r in rows])
        upsert_source(c, path, status="missing", error="文件已不在文件夹中 (file removed)", last_read=now)


def _mark_deleted(c: Connection, rows: list[Any], now: datetime) -> None:
    # one statement for all of them: a shop that empties a sheet of 10,000 rows is one
    # executemany, not 10,000 round trips inside the daemon's transaction
    if rows:
        c.execute(update(t.source_rows).where(t.source_rows.c.id == bindparam("b_id"))
                  .values(deleted=True, version=t.source_rows.c.version + 1, last_seen=now),
                  [{"b_id": r.id} for r in rows])
