"""Put one shop file's rows into the store: provenance, version history, deletions, findings.

Everything for one file happens in one transaction, so a killed daemon leaves the store with
either the old or the new state of that file, never half of it. Rows are compared by a cheap
content hash, so an unchanged row costs one dict lookup and no write.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import (
    LargeBinary,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import Connection

from ..model import ComplaintTable, Finding
from . import tables as t
from .bulk import as_moment, blob_handle, insert_rows, text_as_bytes
from .codec import (
    ALL_SHEET,
    FindingsText,
    Prepared,
    PreparedRow,
    content_hash,
    content_hash_of,
    findings_pieces,
    loads,
    prepare,
    record_key,
    record_ref,
)
from .db import Store

__all__ = ["assign_keys", "ingest_prepared", "ingest_table", "mark_missing", "move_manager_edits",
           "record_failure", "upsert_source"]

# the column order of the tuples ingest_prepared builds (one tuple per stored row)
_ROW_COLUMNS = ("source_path", "sheet", "row", "shop", "complaint_id", "record_key", "content_hash", "data",
                "updated_at", "file_mtime", "version", "first_seen", "last_seen", "deleted", "anchor",
                "due_contact", "due_feedback", "due_followup", "done_contact", "done_feedback", "done_followup",
                "no_deadlines")
_VERSION_COLUMNS = ("source_path", "sheet", "row", "record_key", "version", "content_hash", "data", "deleted",
                    "seen_at", "due_contact", "due_feedback", "due_followup")
_NO_DUES = (None, None, None)
_SLICE = 500   # rows decoded and written at a time


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


# what a stored row's key and its continuation need of a prepared row: (row, shop, 投诉编号,
# anchor, sheet). The daemon holds these for a whole file, the rest a slice at a time.
Light = tuple[int, str, str | None, str, str]


def light_rows(rows: Iterable[PreparedRow]) -> list[Light]:
    """Each prepared row's ``Light`` part, in one pass over ``rows``."""
    return [(r[0], r[1], r[2], r[6], r[8]) for r in rows]


def assign_keys(path: str, rows: list[Light], first_sheet: str = "") -> list[str]:
    """Each row's record key (``rows``: ``light_rows``). An id used twice in the file (the
    validator reports it) keys every row that has it by the id and its anchor, so each keeps its
    own manager edits whatever the order of the rows; two id-less rows typed alike are told
    apart by their order. A row without an id on a second complaint sheet is keyed with that
    sheet too."""
    repeated = {cid for cid, n in Counter(r[2] for r in rows if r[2]).items() if n > 1}
    seen: set[str] = set()
    keys: list[str] = []
    for _row, shop, cid, anc, sheet in rows:
        where = path if sheet == first_sheet or not first_sheet else f"{path}!{sheet}"
        rkey = record_key(shop, cid, where, anc, cid in repeated)
        base, n = rkey, 2
        while rkey in seen:
            rkey, n = f"{base}~{n}", n + 1
        seen.add(rkey)
        keys.append(rkey)
    return keys


def _batches(rows: Iterable[PreparedRow], size: int) -> Iterator[list[PreparedRow]]:
    each = iter(rows)
    while batch := list(islice(each, size)):
        yield batch


def ingest_prepared(store: Store, path: Path, prepared: Prepared, *, file_hash: str, size: int, mtime: float,
                    now: datetime) -> dict[str, int]:
    """Store a file ``codec.prepare`` made (in the reader's child): one transaction."""
    key = str(path)
    counts = {"new": 0, "changed": 0, "deleted": 0, "same": 0}
    shop = prepared.shop or path.parent.name
    with store.begin() as c:
        old = {r.record_key: r for r in c.execute(
            select(t.source_rows.c.id, t.source_rows.c.sheet, t.source_rows.c.row,
                   t.source_rows.c.content_hash, t.source_rows.c.version, t.source_rows.c.deleted,
                   t.source_rows.c.record_key, t.source_rows.c.due_contact, t.source_rows.c.anchor,
                   t.source_rows.c.complaint_id)
            .where(t.source_rows.c.source_path == key))}
        # the rows are gone through twice (a file's keys depend on all its rows), each time a
        # slice at a time: in between, only what keys them is held
        light = light_rows(prepared.rows)
        keys = assign_keys(key, light, prepared.sheet)
        renamed = _continued(c, old, keys, light, prepared.rows)
        del light
        seen = set(keys)
        vanished = {r.record_key: r for k, r in old.items() if k not in seen and not r.deleted}
        for prev in renamed.values():
            vanished.pop(prev.record_key, None)
        # A row that vanished from the shop's file is marked deleted, never dropped: its
        # history stays and a manager can still see it.
        gone = list(vanished.values())
        _mark_deleted(c, gone, now)
        counts["deleted"] = len(gone)
        # a slice of rows at a time: only that slice's JSON is decoded and waits to be written
        # (a new row's JSON is not decoded at all where the driver takes its bytes)
        raw = text_as_bytes(c.dialect)
        for start, batch in zip(range(0, len(keys), _SLICE), _batches(prepared.rows, _SLICE), strict=True):
            new_rows: list[tuple[Any, ...]] = []
            changed: list[dict[str, Any]] = []
            replaced: list[Any] = []   # the stored rows ``changed`` gives new data
            versions: list[tuple[Any, ...]] = []
            part = zip(keys[start:start + _SLICE], batch, strict=True)
            for rkey, (row_no, _shop, cid, upd, packed, h, anc, dues, sheet, scan) in part:
                prev = old.get(rkey) or renamed.get(rkey)
                if prev is None:
                    data = packed if raw else packed.decode()
                    new_rows.append((key, sheet, row_no, shop, cid, rkey, h, data, upd, mtime, 1, now, now, False,
                                     anc, *dues, *scan))
                    versions.append((key, sheet, row_no, rkey, 1, h, t.CURRENT, False, now, *dues))
                    counts["new"] += 1
                elif (prev.content_hash != h or prev.deleted or prev.row != row_no or prev.sheet != sheet
                      or prev.record_key != rkey or (prev.due_contact is None and dues[0] is not None)):
                    v = prev.version + 1
                    data = packed.decode()
                    # SQLAlchemy's own UPDATE binds datetimes, not the store's text of them
                    changed.append(dict(shop=shop, complaint_id=cid, record_key=rkey, content_hash=h, data=data,
                                        updated_at=as_moment(upd), file_mtime=mtime, last_seen=now, deleted=False,
                                        b_id=prev.id, version=v, row=row_no, sheet=sheet, anchor=anc,
                                        due_contact=as_moment(dues[0]), due_feedback=as_moment(dues[1]),
                                        due_followup=as_moment(dues[2]), done_contact=as_moment(scan[0]),
                                        done_feedback=as_moment(scan[1]), done_followup=as_moment(scan[2]),
                                        no_deadlines=scan[3]))
                    replaced.append(prev)
                    versions.append((key, sheet, row_no, rkey, v, h, t.CURRENT, False, now, *dues))
                    counts["changed"] += 1
                else:
                    counts["same"] += 1
            insert_rows(c, t.source_rows, _ROW_COLUMNS, new_rows)
            if changed:
                _keep_history(c, key, replaced)
                cols = [k for k in changed[0] if k != "b_id"]
                stmt = (update(t.source_rows).where(t.source_rows.c.id == bindparam("b_id"))
                        .values({k: bindparam(k) for k in cols}))
                c.execute(stmt, changed)
            insert_rows(c, t.row_versions, _VERSION_COLUMNS, versions)
        insert_rows(c, t.row_versions, _VERSION_COLUMNS,
                    [(key, r.sheet, r.row, r.record_key, r.version + 1, r.content_hash, "{}", True, now, *_NO_DUES)
                     for r in gone])
        for rkey, prev in renamed.items():
            move_manager_edits(c, prev.record_key, rkey, now=now)
        if counts["same"]:
            c.execute(update(t.source_rows).where(t.source_rows.c.source_path == key)
                      .where(t.source_rows.c.deleted.is_(False)).values(last_seen=now))
        c.execute(delete(t.file_findings).where(t.file_findings.c.source_path == key))
        # the values go as parameters, not into the statement: SQLAlchemy keeps a compiled
        # statement for reuse, and with it the values written into it, so the first file's
        # findings (5.7 MB of text for 30,000 complaints) stayed in the daemon for its life
        kept = prepared.findings_json
        handle = blob_handle(c) if len(kept) > _FINDINGS_APART else None
        if handle is not None:
            _insert_apart(c, handle, key, shop, kept)
        else:
            found = kept if isinstance(kept, bytes) else b"".join(findings_pieces(kept))
            if text_as_bytes(c.dialect):   # SQLite: stored from the UTF-8 bytes as they came
                c.execute(insert(t.file_findings).values(data=cast(bindparam("b_data", type_=LargeBinary), Text)),
                          {"source_path": key, "shop": shop, "b_data": found, "digest": content_hash(found)})
            else:
                c.execute(insert(t.file_findings), {"source_path": key, "shop": shop, "data": found.decode(),
                                                    "digest": content_hash(found)})
        upsert_source(c, key, shop=shop, content_hash=file_hash, size=size, mtime=mtime, rows=len(prepared.rows),
                      status="ok", error=None, attempts=0, next_try=None, last_read=now,
                      settings=prepared.settings_json or None)
    return counts


# a file's findings past this many bytes of JSON are written into their row a piece at a time
_FINDINGS_APART = 1 << 20


def _insert_apart(c: Connection, handle: Callable[..., Any], key: str, shop: str,
                  found: bytes | FindingsText) -> None:
    """Store a big file's findings (SQLite): a text of their size, then their UTF-8 written
    into it a piece at a time (a blob handle) from where they waited (isolate.Packed), hashed
    on the way. Bound as a whole, SQLite kept its own copy of them with the statement it caches
    until the next file's: 8 MB for 30,000 complaints, in the daemon between files, beside the
    daemon's own (issue 17)."""
    ff = t.file_findings.c
    c.execute(insert(t.file_findings).values(data=cast(func.zeroblob(bindparam("b_size")), Text)),
              {"source_path": key, "shop": shop, "b_size": len(found), "digest": None})
    rowid: int = c.execute(select(literal_column("rowid")).where(ff.source_path == key)).scalar_one()
    with handle("file_findings", "data", rowid, readonly=False) as blob:
        digest = content_hash_of(_written(blob, findings_pieces(found)))
    c.execute(update(t.file_findings).where(ff.source_path == key).values(digest=digest))


def _written(blob: Any, pieces: Iterable[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    """Each piece, once written to ``blob``."""
    for piece in pieces:
        blob.write(piece)
        yield piece


_SAME_PERSON = ("received_at", "customer_name")


def _keep_history(c: Connection, path: str, replaced: list[Any]) -> None:
    """Stored rows about to get new data: the version that held it until now takes its JSON along."""
    data = select(t.source_rows.c.data).where(t.source_rows.c.id == bindparam("b_id")).scalar_subquery()
    c.execute(update(t.row_versions).where(t.row_versions.c.source_path == path)
              .where(t.row_versions.c.record_key == bindparam("b_key"))
              .where(t.row_versions.c.data == t.CURRENT).values(data=data),
              [{"b_id": prev.id, "b_key": prev.record_key} for prev in replaced])


def _continued(c: Connection, old: dict[str, Any], keys: list[str], light: list[Light],
               rows: Sequence[PreparedRow]) -> dict[str, Any]:
    """New key -> the stored row it continues, for rows whose key changed while the shop edited
    them: the same anchor anywhere in the file (an id typed into a row that had none, even after
    a re-sort), or, at the very sheet and row, the same id or the same 受理时间 and 客户姓名 (its
    description corrected). A new complaint that merely lands where a deleted one stood matches
    none of these and continues nothing, so it never inherits another complaint's 主管批示."""
    seen = set(keys)
    vanished = [r for k, r in old.items() if k not in seen and not r.deleted]
    fresh = [(k, i, p) for i, (k, p) in enumerate(zip(keys, light, strict=True)) if k not in old]
    if not vanished or not fresh:
        return {}
    out: dict[str, Any] = {}
    by_anchor: dict[str, list[Any]] = {}
    for r in vanished:
        if r.anchor:
            by_anchor.setdefault(r.anchor, []).append(r)
    for k, _i, p in fresh:
        same = by_anchor.get(p[3], [])
        if len(same) == 1:
            out[k] = same[0]
    taken = {id(r) for r in out.values()}
    at = {(r.sheet, r.row): r for r in vanished if id(r) not in taken}
    left = [(k, i, p) for k, i, p in fresh if k not in out and (p[4], p[0]) in at]
    if left:
        data = dict(c.execute(select(t.source_rows.c.id, t.source_rows.c.data)
                              .where(t.source_rows.c.id.in_([at[(p[4], p[0])].id for _k, _i, p in left]))).all())
        wanted = {i for _k, i, _p in left}
        # their new values, from one more pass over the rows (it decodes only these)
        values = {i: loads(r[4]) for i, r in enumerate(rows) if i in wanted}
        for k, i, p in left:
            prev = at[(p[4], p[0])]
            was, now = loads(data.get(prev.id) or "{}"), values[i]
            same_id = bool(prev.complaint_id) and prev.complaint_id == p[2]
            same_person = all(was.get(f) for f in _SAME_PERSON) and all(was.get(f) == now.get(f) for f in _SAME_PERSON)
            if same_id or same_person:
                out[k] = prev
    return out


def move_manager_edits(c: Connection, old_key: str, new_key: str, *, now: datetime) -> None:
    """A record's key changed: its managers' cells follow it, unless another file still holds
    the old key (then they stay with that complaint)."""
    still = c.execute(select(t.source_rows.c.id).where(t.source_rows.c.record_key == old_key)
                      .where(t.source_rows.c.deleted.is_(False)).limit(1)).first()
    if still is not None:
        return
    old_ref, new_ref = record_ref(old_key), record_ref(new_key)
    old_row, new_row = json.dumps([old_ref]), json.dumps([new_ref])
    sheet = t.manager_edits.c.sheet == ALL_SHEET
    have = {r.column for r in c.execute(select(t.manager_edits.c.column)
                                        .where(sheet & (t.manager_edits.c.row_key == new_row)))}
    for r in c.execute(select(t.manager_edits).where(sheet & (t.manager_edits.c.row_key == old_row))).all():
        if r.column not in have:
            c.execute(insert(t.manager_edits).values(sheet=ALL_SHEET, row_key=new_row, column=r.column,
                                                     value=r.value, seen_at=now))
    c.execute(delete(t.manager_edits).where(sheet & (t.manager_edits.c.row_key == old_row)))
    c.execute(delete(t.record_aliases).where(t.record_aliases.c.old_ref == old_ref))
    c.execute(insert(t.record_aliases).values(old_ref=old_ref, new_ref=new_ref, seen_at=now))


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
            (path, r.sheet, r.row, r.record_key, r.version + 1, r.content_hash, "{}", True, now, *_NO_DUES)
            for r in rows])
        upsert_source(c, path, status="missing", error="文件已不在文件夹中 (file removed)", last_read=now)


def _mark_deleted(c: Connection, rows: list[Any], now: datetime) -> None:
    # one statement for all of them: a shop that empties a sheet of 10,000 rows is one
    # executemany, not 10,000 round trips inside the daemon's transaction
    if rows:
        c.execute(update(t.source_rows).where(t.source_rows.c.id == bindparam("b_id"))
                  .values(deleted=True, version=t.source_rows.c.version + 1, last_seen=now),
                  [{"b_id": r.id} for r in rows])
