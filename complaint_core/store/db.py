"""Open the store (SQLite file by default, PostgreSQL by URL) and read/write it in transactions."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
import operator
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Generator, Hashable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    bindparam,
    case,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError, OperationalError

from ..deadlines import deadlines
from ..errors import StoreMissing
from ..heap import drained
from ..penalties import PenaltyEvent
from ..rules_book import DEFAULT as DEFAULT_RULES
from ..rules_book import Rules
from ..safety import real_path
from ..schema import KEYS
from ..settings import DEFAULTS, Settings
from . import dcjson
from . import sched_tables as st
from . import tables as t
from .bulk import blob_handle
from .codec import (
    ALL_SHEET,
    content_hash,
    content_hash_of,
    decode_values,
    encode_values,
    loads,
    record_key,
    record_ref,
)
from .reencode import reencode
from .view import FindingRow, ManagerCells, Record

T = TypeVar("T")
log = logging.getLogger("complaint_desk.store")
_SCHEMA_KEYS = frozenset(KEYS)
_EVENT_TEXT = frozenset({"shop", "complaint_id", "person", "dept", "head", "why"})
_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(PenaltyEvent))
_NO_VALUES = dict.fromkeys(KEYS)

__all__ = ["Store", "View", "content_hash", "decode_values", "encode_values", "open_existing_store", "open_store",
           "record_key", "record_ref"]


# complaints of one shop decoded at a time by a write of the merged workbook
SHOP_CHUNK = 1000
# A list of keys given at execution (``{"keys": [...]}``), not written into the statement:
# SQLAlchemy keeps the values of the last statements built with ``in_(list)``, which grew the
# render's memory by a big shop's keys per chunk (issue 17).
IN_KEYS: BindParameter[str] = bindparam("keys", expanding=True)


@dataclass
class Store:
    engine: Engine
    url: str

    def begin(self) -> AbstractContextManager[Connection]:
        return self.engine.begin()

    def sources(self, conn: Connection | None = None) -> list[dict[str, Any]]:
        with self._conn(conn) as c:
            return [dict(r._mapping) for r in c.execute(select(t.sources).order_by(t.sources.c.path))]

    def findings(self, conn: Connection | None = None) -> list[FindingRow]:
        """Every finding of every file: (shop, source_path, sheet, row, cell, field, severity,
        code, message), files in path order, each file's findings in row order."""
        return list(self.iter_findings(conn))

    def iter_findings(self, conn: Connection | None = None) -> Iterator[FindingRow]:
        """``findings`` one file at a time, for a sheet of a few hundred thousand of them."""
        for path, shop, data in self.finding_files(conn):
            yield from file_findings(path, shop, data)

    def finding_files(self, conn: Connection | None = None) -> Iterator[tuple[str, str, str]]:
        """(path, shop, stored JSON of its findings) per file, in path order, one at a time (a
        3,000-row file's findings are a megabyte of JSON)."""
        with self._conn(conn) as c:
            q = select(t.file_findings.c.source_path, t.file_findings.c.shop, t.file_findings.c.data)
            result = c.execution_options(stream_results=True, yield_per=1).execute(
                q.order_by(t.file_findings.c.source_path))
            for path, shop, data in result:
                yield str(path), str(shop or ""), str(data)

    def finding_file(self, path: str, conn: Connection | None = None) -> tuple[str, bytes, str] | None:
        """(shop, stored JSON of its findings in UTF-8, its digest) of one file, as
        ``finding_files`` and ``finding_digests`` give them. As bytes: a big file's findings as
        text took twice their size (5.8 million characters of Chinese for 30,000 complaints,
        beside SQLite's copy), in the piece maker that encodes them (issue 17)."""
        ff = t.file_findings.c
        with self._conn(conn) as c:
            # SQLite gives the stored text's own bytes; PostgreSQL's bytea cast would read
            # backslashes as escapes, so its text is encoded here
            data_col = cast(ff.data, LargeBinary) if c.dialect.name == "sqlite" else ff.data
            got = c.execute(select(ff.shop, data_col, ff.digest).where(ff.source_path == path)).first()
        if got is None:
            return None
        data = got[1] if isinstance(got[1], bytes) else str(got[1]).encode("utf-8", "surrogatepass")
        return str(got[0] or ""), data, got[2] or content_hash(data)

    def finding_pieces(self, path: str, conn: Connection) -> tuple[str, str, int, Generator[bytes, None, None]] | None:
        """``finding_file``, the findings' JSON given a piece at a time while ``conn`` is open:
        (shop, digest, its size in bytes, its UTF-8 pieces: close them before ``conn``, read to
        the end or not). SQLite's are read from the row itself (a blob handle): the piece maker
        that encodes a big file's 校验问题 rows held the whole JSON twice, SQLite's copy and its
        own (16 MiB for 30,000 complaints, issue 17). Elsewhere the whole text is one piece."""
        ff = t.file_findings.c
        handle = blob_handle(conn)
        if handle is None:
            got = self.finding_file(path, conn)
            return None if got is None else (got[0], got[2], len(got[1]), (piece for piece in (got[1],)))
        row = conn.execute(select(literal_column("rowid"), ff.shop, ff.digest).where(ff.source_path == path)).first()
        if row is None:
            return None
        rowid, shop, digest = row

        def pieces() -> Generator[bytes, None, None]:
            with handle("file_findings", "data", rowid, readonly=True) as blob:
                while piece := blob.read(_PIECE):
                    yield piece

        with handle("file_findings", "data", rowid, readonly=True) as blob:
            size = len(blob)
        if digest is None:   # stored by an older version: hashed as it is read
            digest = content_hash_of(pieces())
        return str(shop or ""), digest, size, pieces()

    def finding_digests(self, conn: Connection | None = None) -> list[tuple[str, str, str]]:
        """(path, shop, digest of its findings' JSON) per file, in ``finding_files``' order: what
        the render keys a file's encoded 校验问题 rows by, without reading the findings (those
        of a file stored by an older version, without a digest, are read to work it out)."""
        ff = t.file_findings.c
        with self._conn(conn) as c:
            q = select(ff.source_path, ff.shop, ff.digest, case((ff.digest.is_(None), ff.data)))
            return [(str(path), str(shop or ""), digest or content_hash(str(data)))
                    for path, shop, digest, data in c.execute(q.order_by(ff.source_path))]

    def source_settings(self, conn: Connection | None = None) -> dict[str, Settings]:
        """Each shop file's own 设置 as the reader saw them (the defaults for a file without any)."""
        out: dict[str, Settings] = {}
        with self._conn(conn) as c:
            for path, data in c.execute(select(t.sources.c.path, t.sources.c.settings)):
                out[path] = _settings(data)
        return out

    def shop_marks(self, conn: Connection | None = None, *, shop: str | None = None) -> dict[str, tuple[int, int, int]]:
        """shop -> (stored rows, sum of their versions, highest row id): changes exactly when one
        of the shop's stored rows is added or changed (rows are never removed; every change,
        a deletion or a move to another row included, raises the row's version). ``shop``: that
        shop's only (a piece maker checks it has the rows the render saw)."""
        c = t.source_rows.c
        with self._conn(conn) as cx:
            q = select(c.shop, func.count(), func.sum(c.version), func.max(c.id)).group_by(c.shop)
            if shop is not None:
                q = q.where(c.shop == shop)
            return {name: (int(n), int(v or 0), int(i or 0)) for name, n, v, i in cx.execute(q)}

    def shop_records(self, shop: str, conn: Connection | None = None, *,
                     size: int | None = None) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        """(records, conflicts) of one shop, as ``iter_shops`` gives them, in chunks of at most
        ``size`` complaints in the sheet's order: a shop of 30,000 complaints is decoded a
        thousand at a time, so a write's memory does not grow with the size of a shop."""
        size = size or SHOP_CHUNK
        settings = self.source_settings(conn)
        sr = t.source_rows.c
        by_key = (sr.record_key, sr.source_path, sr.row)
        with self._conn(conn) as c:
            stored = c.execute(select(func.count(func.distinct(sr.record_key))).where(sr.shop == shop)).scalar() or 0
            if stored <= size:
                yield _shop_batch(c.execute(select(*_RECORD_COLUMNS).where(sr.shop == shop).order_by(*by_key)),
                                  settings)
                return
            # a big shop: first the order of its complaints (each one's winning row's 受理时间),
            # then the complaints themselves, a chunk at a time
            if c.dialect.name == "sqlite":
                yield from _chunks_in_order(c, shop, size, settings)
                return
            order = _shop_order(c, shop)
            # the keys as a parameter, not in the statement: SQLAlchemy keeps the values of
            # recent statements written with ``in_(list)``, a big shop's keys by the thousand
            chunk_q = select(*_RECORD_COLUMNS).where(sr.record_key.in_(IN_KEYS)).where(sr.shop == shop).order_by(*by_key)
            for i in range(0, len(order), size):
                keys = [k for _recv, k in order[i:i + size]]
                rows: list[Row[Any]] = []
                for j in range(0, len(keys), 500):   # SQLite's bound-parameter limit
                    rows += c.execute(chunk_q, {"keys": keys[j:j + 500]}).all()
                rows.sort(key=_STORED_ORDER)
                # each stored row (its JSON) is let go of once its complaint is made, not
                # after the whole chunk: the chunk's rows and records are never held together
                yield _shop_batch(drained(rows), settings)

    def iter_shops(self, conn: Connection | None = None) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        """(records, conflicts) of one shop at a time, shops in order, each shop's records in
        the sheet's order (received, then record): what the render streams, so that it never
        holds more than one shop's complaints (a record key starts with its shop, so a record's
        stored rows all carry the same shop)."""
        settings = self.source_settings(conn)
        with self._conn(conn) as c:
            shop = t.source_rows.c.shop
            # code-point order on every database (Python's, and SQLite's default), not the
            # PostgreSQL locale's, so that the sheet's order does not depend on the server
            by_shop = shop.collate("C") if c.dialect.name == "postgresql" else shop
            q = select(*_RECORD_COLUMNS).order_by(by_shop, t.source_rows.c.record_key, t.source_rows.c.source_path,
                                               t.source_rows.c.row)
            result = c.execution_options(stream_results=True, yield_per=5000).execute(q)
            for _shop, rows in itertools.groupby(result, key=_BY_SHOP):
                yield _shop_batch(rows, settings)

    def snapshot(self, conn: Connection | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(current records, conflicts) in one pass over the stored rows.

        A record is one dict per complaint: every schema key plus provenance, the winning
        version, its file's settings and the deadlines the engine computed for that version
        (which replace whatever the shop typed in 联系截止/反馈截止/回访截止).
        A conflict is a complaint present with different content in more than one place.
        """
        records: list[dict[str, Any]] = []
        conflicts: list[dict[str, Any]] = []
        for recs, more in self.iter_shops(conn):
            records.extend(recs)
            conflicts.extend(more)
        return records, conflicts

    def records_for(self, keys: Any, conn: Connection | None = None) -> list[dict[str, Any]]:
        """The current records of ``keys`` (record keys), built exactly as ``snapshot`` builds them,
        in the same order: what the overdue scan decodes instead of every stored row."""
        wanted = sorted(set(keys))
        out: list[dict[str, Any]] = []
        if not wanted:
            return out
        with self._conn(conn) as c:
            settings = self.source_settings(c)
            q = (select(*_RECORD_COLUMNS).where(t.source_rows.c.record_key.in_(IN_KEYS))
                 .order_by(t.source_rows.c.record_key, t.source_rows.c.source_path, t.source_rows.c.row))
            for i in range(0, len(wanted), 500):   # SQLite's bound-parameter limit
                got = c.execute(q, {"keys": wanted[i:i + 500]})
                for key, grp in itertools.groupby(got, key=_BY_KEY):
                    rows = list(grp)
                    if len(rows) > 1:
                        rows.sort(key=_winner_order)
                    out.append(_record(key, rows, settings)[0])
        out.sort(key=_record_order)
        return out

    # ---- what the overdue scan asks of the store (indexed on the due and done columns) ----
    def open_deadlines(self, until: datetime, *, after: datetime | None = None,
                       conn: Connection | None = None) -> list[tuple[str, int, datetime]]:
        """(record key, kind index 0-2, due) of every live stored row whose deadline of that kind
        is not met and falls at or before ``until`` (and after ``after``). Rows without the scan's
        columns (``unfilled_keys``) are not among them."""
        out: list[tuple[str, int, datetime]] = []
        sr = t.source_rows.c
        with self._conn(conn) as c:
            for k, kind in enumerate(("contact", "feedback", "followup")):
                due = sr[f"due_{kind}"]
                # the partial index's own predicate, so that the database uses it
                q = select(sr.record_key, due).where(t.open_predicate(kind)).where(due <= until)
                if after is not None:
                    q = q.where(due > after)
                out.extend((key, k, when) for key, when in c.execute(q))
        return out

    def open_counts(self, now: datetime, warn_hours: float,
                    conn: Connection | None = None) -> tuple[int, int]:
        """(overdue, due within ``warn_hours``) among the open deadlines of filled rows: two
        counts per kind on the open-deadline indexes, for a scan's report."""
        from datetime import timedelta

        sr = t.source_rows.c
        overdue = soon = 0
        with self._conn(conn) as c:
            for kind in ("contact", "feedback", "followup"):
                due = sr[f"due_{kind}"]
                base = select(func.count()).select_from(t.source_rows).where(t.open_predicate(kind))
                overdue += c.execute(base.where(due < now)).scalar() or 0
                soon += c.execute(base.where(due >= now).where(due <= now + timedelta(hours=warn_hours))).scalar() or 0
        return overdue, soon

    def late_done_keys(self, conn: Connection | None = None) -> set[str]:
        """Record keys with a deadline met late (逾期完成): they stay on 逾期 whatever the clock says."""
        sr = t.source_rows.c
        cond = ((sr.done_contact > sr.due_contact) | (sr.done_feedback > sr.due_feedback)
                | (sr.done_followup > sr.due_followup))
        with self._conn(conn) as c:
            return set(c.execute(select(sr.record_key).where(cond).where(sr.deleted.is_(False))
                                 .where(sr.no_deadlines.is_not(True))).scalars())

    def version_mark(self, conn: Connection | None = None) -> int:
        """The newest stored row version: every change to a shop's rows adds one (never removed)."""
        with self._conn(conn) as c:
            return int(c.execute(select(func.max(t.row_versions.c.id))).scalar() or 0)

    def changed_keys(self, since: int, conn: Connection | None = None) -> set[str]:
        """Record keys with a stored row version newer than ``since`` (a ``version_mark``)."""
        with self._conn(conn) as c:
            return set(c.execute(select(t.row_versions.c.record_key).where(t.row_versions.c.id > since)
                                 .distinct()).scalars())

    def history(self, path: str | Path, record_key: str, conn: Connection | None = None) -> list[dict[str, Any]]:
        """Every stored version of one row of ``path``, oldest first: version, seen_at, deleted,
        content_hash and its decoded values (``{}`` for a deletion). The version the file holds
        now keeps its JSON only in source_rows (``tables.CURRENT``): it is read from there."""
        rv, sr = t.row_versions.c, t.source_rows.c
        data = case((rv.data == t.CURRENT, sr.data), else_=rv.data)
        q = (select(rv.version, rv.seen_at, rv.deleted, rv.content_hash, data.label("data"))
             .select_from(t.row_versions.outerjoin(t.source_rows, (sr.source_path == rv.source_path)
                                                   & (sr.record_key == rv.record_key)))
             .where(rv.source_path == str(path)).where(rv.record_key == record_key).order_by(rv.version, rv.id))
        with self._conn(conn) as c:
            return [dict(version=r.version, seen_at=r.seen_at, deleted=r.deleted, content_hash=r.content_hash,
                         values=decode_values(r.data) if r.data else {}) for r in c.execute(q)]

    def unfilled_keys(self, conn: Connection | None = None) -> set[str]:
        """Record keys of rows written without the scan's columns (by hand, or by an older version
        since this store was opened): the scan decodes these rather than trusting empty columns."""
        with self._conn(conn) as c:
            return set(c.execute(select(t.source_rows.c.record_key)
                                 .where(t.source_rows.c.no_deadlines.is_(None))).scalars())

    def content_marks(self, now: datetime) -> str:
        """A short digest of everything the merged workbook shows besides the clock: stored rows,
        files, findings, managers' cells, rules, penalties and the reminders it records as sent.
        Equal digests (and no deadline passing in between) mean an identical workbook."""
        import hashlib
        from datetime import timedelta

        with self.engine.connect() as c:
            parts: list[Any] = [self.version_mark(c)]
            parts += c.execute(select(func.count(), func.max(t.manager_edits.c.id), func.max(t.manager_edits.c.seen_at))
                               .select_from(t.manager_edits)).one()
            parts += c.execute(select(t.sources.c.path, t.sources.c.status, t.sources.c.error, t.sources.c.last_read,
                                      t.sources.c.rows, t.sources.c.content_hash).order_by(t.sources.c.path)).all()
            parts += c.execute(select(t.chain_rules.c.name, t.chain_rules.c.data)
                               .where(t.chain_rules.c.name.in_(("rules", "adopted")))
                               .order_by(t.chain_rules.c.name)).all()
            parts += c.execute(select(func.count(), func.max(t.file_findings.c.source_path))
                               .select_from(t.file_findings)).one()
            if st.penalty_events.name in _tables(self.engine):
                parts += c.execute(select(func.count()).select_from(st.penalty_events)).one()
                parts += c.execute(select(func.count(), func.max(st.outbox.c.id), func.min(st.outbox.c.sent_at))
                                   .where(st.outbox.c.state == "sent")
                                   .where(st.outbox.c.sent_at >= now - timedelta(days=7))).one()
        return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:32]

    def has_records(self, conn: Connection | None = None) -> bool:
        """Whether any shop file ever gave a complaint (deleted ones count)."""
        with self._conn(conn) as c:
            return c.execute(select(t.source_rows.c.id).limit(1)).first() is not None

    def live_count(self, conn: Connection | None = None) -> int:
        """How many complaints still have a row in a shop's file."""
        with self._conn(conn) as c:
            return int(c.execute(select(func.count(func.distinct(t.source_rows.c.record_key)))
                                 .where(t.source_rows.c.deleted.is_(False))).scalar() or 0)

    def current_records(self, conn: Connection | None = None) -> list[dict[str, Any]]:
        return self.snapshot(conn)[0]

    def conflicts(self, conn: Connection | None = None) -> list[dict[str, Any]]:
        return self.snapshot(conn)[1]

    def conflict_count(self, conn: Connection | None = None) -> int:
        """How many conflicts ``conflicts`` lists (each live row of a complaint beside the one kept,
        when its live rows differ), counted by the database: the daemon says so while a manager
        has the merged workbook open, and must not hold every complaint to say it (issue 17)."""
        sr = t.source_rows.c
        split = (select((func.count() - 1).label("others")).where(sr.deleted.is_(False)).group_by(sr.record_key)
                 .having(func.count(func.distinct(sr.content_hash)) > 1).subquery())
        with self._conn(conn) as c:
            return int(c.execute(select(func.coalesce(func.sum(split.c.others), 0))).scalar() or 0)

    def manager_edits(self, sheet: str, conn: Connection | None = None) -> ManagerCells:
        out: ManagerCells = defaultdict(dict)
        with self._conn(conn) as c:
            for r in c.execute(select(t.manager_edits).where(t.manager_edits.c.sheet == sheet)):
                out[tuple(json.loads(r.row_key))][r.column] = r.value
        return dict(out)

    def save_manager_edits(self, sheet: str, edits: dict[tuple[str, ...], dict[str, Any]], *, now: datetime) -> int:
        """Upsert what managers typed (an emptied cell is saved as empty: they cleared it)."""
        if not edits:
            return 0
        current = self.manager_edits(sheet)
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for key, columns in edits.items():
            old = current.get(key, {})
            for column, value in columns.items():
                value = None if value in (None, "") else str(value)
                if (old[column] == value) if column in old else value is None:
                    continue
                row = dict(b_sheet=sheet, b_key=json.dumps(list(key), ensure_ascii=False), b_column=column,
                           value=value, seen_at=now)
                (updates if column in old else inserts).append(row)
        with self.begin() as c:
            if inserts:
                c.execute(insert(t.manager_edits), [dict(sheet=r["b_sheet"], row_key=r["b_key"], column=r["b_column"],
                                                         value=r["value"], seen_at=now) for r in inserts])
            if updates:
                c.execute(update(t.manager_edits).where(
                    (t.manager_edits.c.sheet == bindparam("b_sheet")) & (t.manager_edits.c.row_key == bindparam("b_key"))
                    & (t.manager_edits.c.column == bindparam("b_column"))).values(
                    value=bindparam("value"), seen_at=bindparam("seen_at")), updates)
        return len(inserts) + len(updates)

    def rules(self, conn: Connection | None = None) -> Rules:
        """The chain's rules as last saved by a command that loaded the rules workbook."""
        with self._conn(conn) as c:
            row = c.execute(select(t.chain_rules.c.data).where(t.chain_rules.c.name == "rules")).first()
        return dcjson.loads(Rules, row[0]) if row else DEFAULT_RULES

    def save_rules(self, rules: Rules, *, now: datetime, conn: Connection | None = None) -> None:
        """Keep ``rules`` as the chain's rules (written only when they changed)."""
        data = dcjson.dumps(rules)
        with self._begin(conn) as c:
            row = c.execute(select(t.chain_rules.c.data).where(t.chain_rules.c.name == "rules")).first()
            if row is None:
                c.execute(insert(t.chain_rules).values(name="rules", data=data, saved_at=now))
            elif row[0] != data:
                c.execute(update(t.chain_rules).where(t.chain_rules.c.name == "rules")
                          .values(data=data, saved_at=now))

    def penalty_events(self, conn: Connection | None = None) -> list[PenaltyEvent]:
        """Every penalty event the scans stored, by day."""
        ev = st.penalty_events.c
        # by position, in the event's field order (``_penalty_event``): a shop's part of 处罚 is
        # made from years of per-day penalties, and a mapping per row cost 20 µs of them
        columns = [ev[name] for name in _EVENT_FIELDS]
        with self._conn(conn) as c:
            rows = c.execute(select(*columns).order_by(ev.day, ev.event_id))
            return [_penalty_event(r) for r in rows]

    def penalty_marks(self, conn: Connection | None = None) -> dict[str, tuple[int, str, str]]:
        """Each shop's penalty events as (how many, first id, last id): the scans only ever add
        events, so the same three mean the same events (merged/penalty_parts.py). An event
        without a shop (an older version's) counts under ""."""
        ev = st.penalty_events.c
        marks: dict[str, tuple[int, str, str]] = {}
        with self._conn(conn) as c:
            # grouped on the column itself, not on coalesce(): the index answers it
            for shop, n, lo, hi in c.execute(select(ev.shop, func.count(), func.min(ev.event_id), func.max(ev.event_id))
                                             .group_by(ev.shop)):
                key = shop or ""
                if key in marks:   # NULL and "" both
                    m, mlo, mhi = marks[key]
                    n, lo, hi = n + m, min(lo, mlo), max(hi, mhi)
                marks[key] = (int(n), lo, hi)
        return marks

    def loss_event_ids(self, conn: Connection | None = None) -> set[str]:
        """The ids of the stored loss penalty lines (损失处罚), whatever the current rules say."""
        from ..penalties import LOSS_KINDS

        ev = st.penalty_events.c
        with self._conn(conn) as c:
            return set(c.execute(select(ev.event_id).where(ev.kind.in_(sorted(LOSS_KINDS)))).scalars())

    def shop_penalty_events(self, shops: Iterable[str],
                            conn: Connection | None = None) -> Iterator[tuple[str, list[PenaltyEvent]]]:
        """(shop, its events by day) for ``shops`` (events without a shop: ""), a shop at a time."""
        ev = st.penalty_events.c
        columns = [ev[name] for name in _EVENT_FIELDS]
        wanted = sorted(set(shops))
        with self._conn(conn) as c:
            if "" in wanted:
                wanted.remove("")
                rows = c.execute(select(*columns).where(or_(ev.shop.is_(None), ev.shop == ""))
                                 .order_by(ev.day, ev.event_id))
                yield "", [_penalty_event(r) for r in rows]
            for i in range(0, len(wanted), 500):   # SQLite's bound-parameter limit
                rows = c.execute(select(ev.shop, *columns).where(ev.shop.in_(wanted[i:i + 500]))
                                 .order_by(ev.shop, ev.day, ev.event_id))
                for key, group in itertools.groupby(rows, key=operator.itemgetter(0)):
                    yield key, [_penalty_event(r[1:]) for r in group]

    def _named(self, name: str, conn: Connection | None = None) -> str | None:
        with self._conn(conn) as c:
            row = c.execute(select(t.chain_rules.c.data).where(t.chain_rules.c.name == name)).first()
        return row[0] if row else None

    def named_under(self, prefix: str) -> dict[str, str]:
        """The named documents (``save_named``) whose name starts with ``prefix``: name -> data."""
        with self._conn(None) as c:
            rows = c.execute(select(t.chain_rules.c.name, t.chain_rules.c.data)
                             .where(t.chain_rules.c.name.startswith(prefix, autoescape=True))).all()
        return {name: data for name, data in rows}

    def forget_named(self, name: str) -> None:
        with self.begin() as c:
            c.execute(delete(t.chain_rules).where(t.chain_rules.c.name == name))

    def save_named(self, name: str, data: str, *, now: datetime, conn: Connection | None = None) -> None:
        """Keep one small named document (chain_rules), replacing the one before."""
        with self._begin(conn) as c:
            c.execute(delete(t.chain_rules).where(t.chain_rules.c.name == name))
            c.execute(insert(t.chain_rules).values(name=name, data=data, saved_at=now))

    def store_id(self) -> str:
        """This store's own identity, written into the merged workbook: a workbook another store
        wrote is recognised and adopted instead of being taken for this store's own output."""
        found = self._named("store_id")
        if found:
            return found
        import uuid

        new = uuid.uuid4().hex
        try:
            with self.begin() as c:
                c.execute(insert(t.chain_rules).values(name="store_id", data=new, saved_at=datetime.now()))
        except IntegrityError:   # another process named it first
            pass
        return self._named("store_id") or new

    def notes(self, conn: Connection | None = None) -> list[dict[str, Any]]:
        """Adoptions of a merged workbook by this store, for 来源."""
        data = self._named("adopted", conn)
        return json.loads(data) if data else []

    def note_adoption(self, path: Path, *, cells: int, sent: int, now: datetime) -> None:
        notes = [n for n in self.notes() if n["path"] != str(path)]
        notes.append({"path": str(path), "cells": cells, "sent": sent, "at": now.isoformat(timespec="seconds")})
        data = json.dumps(notes, ensure_ascii=False)
        with self.begin() as c:
            c.execute(delete(t.chain_rules).where(t.chain_rules.c.name == "adopted"))
            c.execute(insert(t.chain_rules).values(name="adopted", data=data, saved_at=now))

    def aliases(self) -> dict[str, str]:
        """Old 记录标识 -> the current one, for records whose key changed (chains followed)."""
        with self.engine.connect() as c:
            pairs = dict(c.execute(select(t.record_aliases.c.old_ref, t.record_aliases.c.new_ref)).all())
        out = {}
        for old in pairs:
            new, hops = pairs[old], 0
            while new in pairs and hops < 100:
                new, hops = pairs[new], hops + 1
            out[old] = new
        return out

    def recent_sent(self, now: datetime, days: int = 7) -> list[tuple[str, str, datetime]]:
        """Reminders sent in the last ``days``: (dedupe key, recipient, sent at)."""
        from datetime import timedelta

        with self.engine.connect() as c:
            rows = c.execute(select(st.outbox.c.dedupe_key, st.outbox.c.recipient, st.outbox.c.sent_at)
                             .where(st.outbox.c.state == "sent")
                             .where(st.outbox.c.sent_at >= now - timedelta(days=days))
                             .order_by(st.outbox.c.id)).all()
        return [(k, r, at) for k, r, at in rows]

    def adopt_sent(self, sent: list[list[Any]], *, now: datetime) -> int:
        """Record as sent the reminders a merged workbook says another store sent."""
        if not sent:
            return 0
        with self.begin() as c:
            have = {k for (k,) in c.execute(select(st.outbox.c.dedupe_key))}
            rows = []
            for key, recipient, when in sent:
                if not key or key in have:
                    continue
                have.add(key)
                at = when if isinstance(when, datetime) else _parse_time(when) or now
                rows.append(dict(dedupe_key=key, message_id=f"<adopted-{content_hash(key)}@complaint-desk>",
                                 recipient=recipient or "", subject="（由之前的存储发送）", body_text="",
                                 body_html="", state="sent", attempts=0, next_at=at, created_at=at, sent_at=at,
                                 last_error="adopted from the merged workbook"))
            if rows:
                c.execute(insert(st.outbox), rows)
        return len(rows)

    def migrate_legacy_edits(self) -> int:
        """Managers' cells on 全部投诉 saved by shop + id (before records had references): keyed
        again by the reference of the complaint with that shop and id, once."""
        legacy = {k: v for k, v in self.manager_edits(ALL_SHEET).items() if len(k) == 2}
        if not legacy:
            return 0
        refs: dict[tuple[str, str], str] = {}
        for records, _conflicts in self.iter_shops():   # a shop at a time: only the refs asked for are kept
            for rec in records:
                if (key := (str(rec["shop"]), str(rec.get("complaint_id") or ""))) in legacy:
                    refs.setdefault(key, rec["record_ref"])
        with self.begin() as c:
            for (shop, cid), cells in legacy.items():
                old = json.dumps([shop, cid], ensure_ascii=False)
                ref = refs.get((shop, cid))
                if ref is not None:
                    new = json.dumps([ref])
                    for column, value in cells.items():
                        c.execute(delete(t.manager_edits).where(
                            (t.manager_edits.c.sheet == ALL_SHEET) & (t.manager_edits.c.row_key == new)
                            & (t.manager_edits.c.column == column)))
                        c.execute(insert(t.manager_edits).values(sheet=ALL_SHEET, row_key=new, column=column,
                                                                 value=value, seen_at=datetime.now()))
                c.execute(delete(t.manager_edits).where((t.manager_edits.c.sheet == ALL_SHEET)
                                                        & (t.manager_edits.c.row_key == old)))
        return len(legacy)

    def written_stamp(self, path: Path) -> tuple[int, int] | None:
        """(mtime_ns, size) of ``path`` right after the daemon last replaced it."""
        with self.engine.connect() as c:
            row = c.execute(select(t.merged_files.c.mtime_ns, t.merged_files.c.size)
                            .where(t.merged_files.c.path == str(path))).first()
        return (row[0], row[1]) if row else None

    def save_written_stamp(self, path: Path, stamp: tuple[int, int]) -> None:
        with self.begin() as c:
            c.execute(delete(t.merged_files).where(t.merged_files.c.path == str(path)))
            c.execute(insert(t.merged_files).values(path=str(path), mtime_ns=stamp[0], size=stamp[1]))

    def _begin(self, conn: Connection | None) -> AbstractContextManager[Connection]:
        from contextlib import nullcontext

        return nullcontext(conn) if conn is not None else self.engine.begin()

    def _conn(self, conn: Connection | None) -> AbstractContextManager[Connection]:
        from contextlib import nullcontext

        return nullcontext(conn) if conn is not None else self.engine.connect()


_PIECE = 1 << 18   # bytes of a stored value read at a time (``finding_pieces``)



def file_findings(path: str, shop: str, data: str) -> Iterator[FindingRow]:
    """The findings of one file from ``finding_files``."""
    for f in loads(data):
        yield (shop, path, *f)


def _penalty_event(row: Sequence[Any]) -> PenaltyEvent:
    """An event from its columns in ``_EVENT_FIELDS`` order. A text column an older version left
    NULL reads as "" (the event's fields are text; the others are NOT NULL)."""
    if None not in row:
        return PenaltyEvent(*row)
    values: list[Any] = ["" if v is None and n in _EVENT_TEXT else v for n, v in zip(_EVENT_FIELDS, row, strict=True)]
    return PenaltyEvent(*values)


def _tables(engine: Engine) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(engine).get_table_names())


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _settings(data: str | None) -> Settings:
    # a few hundred shop files behind a million rows, most with the same 设置: decode each once
    if not data:
        return DEFAULTS
    try:
        return dcjson.loads(Settings, data)
    except (TypeError, ValueError, KeyError):
        return DEFAULTS   # written by a newer version in a shape this one cannot read


def _record(key: str, rows: list[Row[Any]], settings: dict[str, Settings]) -> tuple[dict[str, Any],
                                                                                 list[dict[str, Any]]]:
    """One complaint from its stored rows (``_RECORD_COLUMNS``, winner first): the record and its conflicts."""
    if len(rows) == 1:   # the complaint is in one file: nothing to choose, nothing to compare
        win = rows[0]
        live: list[Row[Any]] = [] if win[_DELETED] else rows
    else:
        live = [r for r in rows if not r[_DELETED]]
        win = (live or rows)[0]
    values = decode_values(win[_DATA])
    extras = values.pop("_extras", {})
    if _SCHEMA_KEYS.issuperset(values):
        rec = dict(_NO_VALUES)   # every schema key, None where the shop left it empty
        rec.update(values)
    else:   # a key this version does not know (written by a later one): leave it out
        rec = {k: values.get(k) for k in KEYS}
    path = win[_PATH]
    shop_settings = settings.get(path, DEFAULTS)
    if win[_ANCHOR] is None:   # stored by a version before deadlines were kept
        d = deadlines(rec, shop_settings)
        dues = (d.contact_due, d.feedback_due, d.followup_due)
    else:
        dues = win[_DUES]
    rec["contact_due"], rec["feedback_due"], rec["followup_due"] = dues
    rec["shop"] = win[_SHOP]
    rec["source_file"] = path
    rec["source_sheet"] = win[_SHEET]
    rec["source_row"] = win[_ROW]
    rec["content_hash"] = win[_HASH]
    rec["first_seen"] = win[_FIRST_SEEN]
    rec["last_seen"] = win[_LAST_SEEN]
    rec["deleted"] = not live
    rec["record_id"] = key
    rec["record_ref"] = record_ref(key)
    rec["version"] = win[_VERSION]
    rec["extras"] = extras
    rec["settings"] = shop_settings
    rec["dues"] = dues
    conflicts = []
    if len(live) > 1 and len({r[_HASH] for r in live}) > 1:
        conflicts = _conflicts(key, live, values)
    return rec, conflicts


def _shop_batch(rows: Iterable[Row[Any]], settings: dict[str, Settings]) -> tuple[list[dict[str, Any]],
                                                                                  list[dict[str, Any]]]:
    """One shop's records (in the sheet's order) and conflicts from its stored rows
    (``_RECORD_COLUMNS``, in key order)."""
    records: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    for key, grp in itertools.groupby(rows, key=_BY_KEY):
        got = list(grp)   # the driver's rows as they come: no dict per stored row
        if len(got) > 1:
            got.sort(key=_winner_order)
        rec, more = _record(key, got, settings)
        records.append(rec)
        if more:
            conflicts.extend(more)
    records.sort(key=_record_order)
    return records, conflicts


# a row's JSON of either format (codec.ROW_JSON): compact, or with spaces as older versions wrote it
_RECEIVED = re.compile(r'"received_at": ?"((?:[^"\\]|\\.)*)"')


def _received_text(data: str) -> str:
    """``str(record["received_at"] or "")`` of a stored row, as ``_record_order`` sorts by it,
    without decoding the whole row when the stored JSON holds it once as text."""
    found = _RECEIVED.findall(data)
    if len(found) == 1 and "\\" not in found[0]:
        return _received_order(str(found[0]))
    value = decode_values(data).get("received_at")
    return "" if value is None else str(value)


def _received_order(text: str) -> str:
    """A 受理时间 stored as text, as ``_record_order`` sorts by it (``decode_values`` reads a
    moment as a datetime, anything else stays the text)."""
    try:
        return str(datetime.fromisoformat(text))
    except ValueError:
        return text


def _chunks_in_order(c: Connection, shop: str, size: int,
                     settings: dict[str, Settings]) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """A big shop's (records, conflicts), ``size`` complaints at a time, from one query in the
    sheet's order: the order (``_shop_order``) goes into a temporary table the shop's stored
    rows are joined to, and is let go of (30,000 complaints: 5 MiB held by a piece maker
    through the whole shop, issue 17).
    Asking for a chunk's rows by their keys (500 to a query, each query sorted) took a shop of
    10,000 complaints 0.83-0.98 s against 0.49-0.81 s so (issue 17: years of history in one
    shop). The temporary table is this connection's own and lives in SQLite's temporary
    database, so a reader of the store writes nothing to the store."""
    name = f"cd_order_{uuid.uuid4().hex}"
    keyed = Table(name, MetaData(), Column("p", Integer, primary_key=True), Column("k", Text, nullable=False),
                  prefixes=["TEMPORARY"])
    keyed.create(c)
    try:
        # the driver's own executemany: SQLAlchemy's parameters per row cost a tenth of the read
        order = _shop_order(c, shop)
        c.exec_driver_sql(f'INSERT INTO "{name}" (p, k) VALUES (?, ?)', [(i, k) for i, (_r, k) in enumerate(order)])
        del order
        sr = t.source_rows.c
        q = (select(*_RECORD_COLUMNS).select_from(keyed.join(t.source_rows, sr.record_key == keyed.c.k))
             .where(sr.shop == shop).order_by(keyed.c.p, sr.source_path, sr.row))
        complaints = itertools.groupby(c.execution_options(stream_results=True, yield_per=500).execute(q),
                                       key=_BY_KEY)
        # each complaint's rows are taken before the next complaint is read; the chunk's rows are
        # let go of as its complaints are made, as in the other path
        while rows := [r for _key, grp in itertools.islice(complaints, size) for r in list(grp)]:
            yield _shop_batch(drained(rows), settings)
    finally:
        # a walk given up half-way (a scan stopped by Ctrl+C) is finished only when Python
        # collects it, after its connection was closed: the table went with it, or stays in
        # the pooled connection under a name never used again
        if not c.closed and not c.invalidated:
            keyed.drop(c)


def _shop_order(c: Connection, shop: str) -> list[tuple[str, str]]:
    """(受理时间 as ``_record_order`` sorts by it, record key) of every complaint of ``shop``,
    sorted: where a big shop's chunks begin and end."""
    if c.dialect.name == "sqlite":
        try:
            return _shop_order_sqlite(c, shop)
        except OperationalError:
            # SQLite's JSON refuses a row the store wrote (a NaN): every row's JSON is read here
            log.debug("shop order by SQLite's JSON", exc_info=True)
    sr = t.source_rows.c
    q = select(*_RECORD_COLUMNS).where(sr.shop == shop).order_by(sr.record_key, sr.source_path, sr.row)
    order: list[tuple[str, str]] = []
    for key, grp in itertools.groupby(c.execute(q), key=_BY_KEY):
        win = min(grp, key=_winner_order)
        order.append((_received_text(win[_DATA]), key))
    order.sort()
    return order


def _shop_order_sqlite(c: Connection, shop: str) -> list[tuple[str, str]]:
    """``_shop_order`` with each row's 受理时间 taken out of its JSON by SQLite: a shop of 10,000
    complaints sends 10 MB of JSON less (a save of a shop past ``SHOP_CHUNK`` rows read its
    JSON twice, once for this order and once for its records)."""
    sr = t.source_rows.c
    q = (select(sr.record_key, sr.deleted, sr.updated_at, sr.file_mtime, sr.source_path, sr.row,
                func.json_type(sr.data, "$.received_at"), func.json_extract(sr.data, "$.received_at"))
         .where(sr.shop == shop).order_by(sr.record_key, sr.source_path, sr.row))
    order: list[tuple[str, str]] = []
    odd: dict[int, tuple[str, str]] = {}   # place in ``order`` -> winning row (path, key) of a non-text 受理时间
    for key, grp in itertools.groupby(c.execute(q), key=operator.itemgetter(0)):
        win = min(grp, key=lambda r: _winner_key(r[1], r[2], r[3], r[4], r[5]))
        kind, value = win[6], win[7]
        if kind == "text":
            text = _received_order(value)
        elif kind is None or kind == "null":
            text = ""
        else:   # a number or true/false typed as 受理时间: read as decode_values reads it
            odd[len(order)] = (win[4], key)
            text = ""
        order.append((text, key))
    for at, (path, key) in odd.items():
        data = c.execute(select(sr.data).where(sr.record_key == key).where(sr.source_path == path)).scalar_one()
        order[at] = (_received_text(data), key)
    order.sort()
    return order


def _record_order(r: dict[str, Any]) -> tuple[str, str, str]:
    return (r["shop"], str(r["received_at"] or ""), r["record_id"])


def _conflicts(key: str, live: list[Row[Any]], kept: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    win = live[0]
    for other in live[1:]:
        values = decode_values(other[_DATA])
        differs = sorted(k for k in set(kept) | set(values) if k != "_extras" and kept.get(k) != values.get(k))
        out.append({"record_key": key, "shop": win[_SHOP], "complaint_id": win[_COMPLAINT_ID],
                    "kept_path": win[_PATH], "kept_row": win[_ROW],
                    "other_path": other[_PATH], "other_row": other[_ROW], "fields": differs,
                    "kept": kept, "other": values})
    return out


# What a record is built from (``_record``, ``_winner_order``, ``_conflicts``): a record's
# stored row without the scan's columns (done_*, no_deadlines) and its id. Three moments fewer
# to convert per row: a first write of 100,000 complaints read its rows 2-4 ms a shop sooner.
_RECORD_COLUMNS = tuple(c for c in t.source_rows.c
                        if c.name not in ("id", "done_contact", "done_feedback", "done_followup", "no_deadlines"))
# where each of them sits in a row the driver gives (read by position: a mapping per stored row
# cost a write of 100,000 complaints about a tenth of its fetching)
_AT = {c.name: i for i, c in enumerate(_RECORD_COLUMNS)}
(_PATH, _SHEET, _ROW, _SHOP, _COMPLAINT_ID, _KEY, _HASH, _DATA, _UPDATED, _MTIME, _VERSION, _FIRST_SEEN, _LAST_SEEN,
 _DELETED, _ANCHOR) = (_AT[n] for n in ("source_path", "sheet", "row", "shop", "complaint_id", "record_key",
                                         "content_hash", "data", "updated_at", "file_mtime", "version", "first_seen",
                                         "last_seen", "deleted", "anchor"))
_DUES = slice(_AT["due_contact"], _AT["due_followup"] + 1)
assert _DUES.stop - _DUES.start == 3 and [c.name for c in _RECORD_COLUMNS[_DUES]] == [
    "due_contact", "due_feedback", "due_followup"]
_BY_KEY = operator.itemgetter(_KEY)
_BY_SHOP = operator.itemgetter(_SHOP)
_STORED_ORDER = operator.itemgetter(_KEY, _PATH, _ROW)


def _winner_order(row: Row[Any]) -> tuple[bool, float, float, str, int]:
    return _winner_key(row[_DELETED], row[_UPDATED], row[_MTIME], row[_PATH], row[_ROW])


def _winner_key(deleted: bool, updated: datetime | None, mtime: float | None, path: str,
                row: int) -> tuple[bool, float, float, str, int]:
    # Newest updated_at wins, then the newer file; the path makes the order total, so the
    # result never depends on which file was read first.
    updated = updated or datetime.min
    return (deleted, -updated.timestamp() if updated != datetime.min else float("inf"), -(mtime or 0), path, row)


def store_url(url_or_path: str | Path) -> str:
    text = str(url_or_path)
    if "://" in text:
        return text
    return f"sqlite:///{real_path(text)}"


def open_store(url_or_path: str | Path) -> Store:
    url = store_url(url_or_path)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = _engine(url)
    t.metadata.create_all(engine)
    upgrade(engine)
    reencode(engine)
    # create_all adds no index to a table an older version made
    for index in [*t.source_rows.indexes, *st.penalty_events.indexes]:
        index.create(engine, checkfirst=True)
    _move_old_findings(engine)
    return Store(engine=engine, url=url)


def connect_store(url: str) -> Store:
    """A store ``open_store`` already opened (and brought up to date), opened again by another
    process of the same command: a piece maker (merged/makers.py) only reads it."""
    return Store(engine=_engine(url), url=url)


PAGE_SIZE = 16384   # bytes, of a new SQLite store's pages


def _engine(url: str) -> Engine:
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # A stored row is a complaint's JSON, about 1.5 KB: 16 KiB pages hold ten of them
            # where 4 KiB pages hold two, so a first merge of 100,000 complaints writes and
            # checkpoints far fewer pages (storing them: 2.6 -> 2.2 CPU-s, medians of six). Only a new store
            # takes it (it must come before WAL); an existing one keeps its pages.
            cur.execute(f"PRAGMA page_size={PAGE_SIZE}")
            # WAL: managers' readers never block the daemon's writes; a killed daemon leaves
            # either the old or the new transaction, never half of one.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()
    return engine


def open_existing_store(url_or_path: str | Path) -> Store:
    """The store for a command that only reads and scans it: a store that does not exist (a
    typo in --state, a deleted file) is refused instead of silently created empty."""
    url = store_url(url_or_path)
    if url.startswith("sqlite:///"):
        if not Path(url[len("sqlite:///"):]).is_file():
            raise StoreMissing(url_or_path)
    else:
        from sqlalchemy import inspect

        engine = create_engine(url, future=True)
        try:
            if not inspect(engine).has_table(t.sources.name):
                raise StoreMissing(url_or_path)
        finally:
            engine.dispose()
    return open_store(url)


def upgrade(engine: Engine) -> list[str]:
    """Add the nullable columns newer versions declare to tables an older version created.

    ``create_all`` never alters an existing table, and a shop upgrading keeps its state file.
    """
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import OperationalError, ProgrammingError

    added: list[str] = []
    insp = inspect(engine)
    for table in t.metadata.sorted_tables:
        if not insp.has_table(table.name):
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        for col in table.columns:
            if col.name in have or not col.nullable:
                continue
            kind = col.type.compile(dialect=engine.dialect)
            # two copies starting at once (a daemon and a CLI command) may both try
            guard = "IF NOT EXISTS " if engine.dialect.name == "postgresql" else ""
            try:
                with engine.begin() as c:
                    c.execute(text(f'ALTER TABLE {table.name} ADD COLUMN {guard}"{col.name}" {kind}'))
            except (OperationalError, ProgrammingError) as e:
                if "duplicate column" not in str(e) and "already exists" not in str(e):
                    raise
            added.append(f"{table.name}.{col.name}")
    if engine.dialect.name == "postgresql":
        added += _widen(engine, insp)
    return added


def _widen(engine: Engine, insp: Any) -> list[str]:
    """Widen on PostgreSQL what an older version created narrower than the tables now declare
    (SQLite never bounded either): a bounded text column that holds a shop's or a file's words
    becomes ``text`` (no stored row is rewritten), a file's size becomes ``bigint``. One complaint
    id or staff name past the old bound, or one file past 2 GiB, stopped a whole merge or scan
    there, and only there."""
    from sqlalchemy import BigInteger, Text, text

    widened: list[str] = []
    for table in t.metadata.sorted_tables:
        if not insp.has_table(table.name):
            continue
        have = {c["name"]: c["type"] for c in insp.get_columns(table.name)}
        for col in table.columns:
            got = have.get(col.name)
            if isinstance(col.type, Text) and getattr(got, "length", None):
                kind = "TEXT"
            elif isinstance(col.type, BigInteger) and got is not None and not isinstance(got, BigInteger):
                kind = "BIGINT"
            else:
                continue
            with engine.begin() as c:
                c.execute(text(f'ALTER TABLE {table.name} ALTER COLUMN "{col.name}" TYPE {kind}'))
            widened.append(f"{table.name}.{col.name}")
    return widened


def backfill_scan_fields(engine: Engine) -> int:
    """Rows stored before the scan's columns existed: fill them once from the stored JSON (and
    the deadlines too, with the file's own 设置, for rows stored before deadlines were kept).

    Run by the render (a writer anyway), not by ``open_store``: a scan that only reads must
    not wait for another writer. Until then the scan decodes such rows (``unfilled_keys``).
    """
    from .codec import engine_dues, scan_fields

    with engine.begin() as c:
        todo = c.execute(select(t.source_rows.c.id, t.source_rows.c.data, t.source_rows.c.anchor,
                                t.source_rows.c.source_path, t.source_rows.c.due_contact,
                                t.source_rows.c.due_feedback, t.source_rows.c.due_followup)
                         .where(t.source_rows.c.no_deadlines.is_(None))).all()
        if not todo:
            return 0
        settings = {p: _settings(d) for p, d in c.execute(select(t.sources.c.path, t.sources.c.settings))}
        params = []
        for row_id, data, anchor, path, *dues in todo:
            values = decode_values(data)
            if anchor is None:
                dues = list(engine_dues(values, settings.get(path, DEFAULTS)))
            done_c, done_f, done_fu, none = scan_fields(values)
            params.append(dict(b_id=row_id, done_contact=done_c, done_feedback=done_f, done_followup=done_fu,
                               no_deadlines=none, due_contact=dues[0], due_feedback=dues[1], due_followup=dues[2]))
        names = ("done_contact", "done_feedback", "done_followup", "no_deadlines", "due_contact", "due_feedback",
                 "due_followup")
        c.execute(update(t.source_rows).where(t.source_rows.c.id == bindparam("b_id"))
                  .values({n: bindparam(n) for n in names}), params)
    return len(params)


def _move_old_findings(engine: Engine) -> None:
    """A store written before findings were kept per file: move them, once, in one transaction."""
    with engine.begin() as c:
        if c.execute(select(t.findings.c.id).limit(1)).first() is None:
            return
        per_file: dict[str, tuple[str, list[list[Any]]]] = {}
        q = select(t.findings).order_by(t.findings.c.source_path, t.findings.c.row, t.findings.c.id)
        for r in c.execute(q):
            per_file.setdefault(r.source_path, (r.shop, []))[1].append(
                [r.sheet, r.row, r.cell, r.field, r.severity, r.code, r.message])
        done = {p for (p,) in c.execute(select(t.file_findings.c.source_path))}
        rows = [dict(source_path=p, shop=shop, data=json.dumps(items, ensure_ascii=False))
                for p, (shop, items) in per_file.items() if p not in done]
        if rows:
            c.execute(insert(t.file_findings), rows)
        c.execute(delete(t.findings))


class View:
    """One read of the store for one rewrite of the merged workbook, inside one transaction.

    Every sheet (ours and the scheduler's) asks for the same complaints; decoding 100,000
    stored rows costs seconds, so each query runs once and every sheet sees the same snapshot.
    ``memo`` lets a sheet provider share its own derived result (the overdue scan) likewise.
    """

    def __init__(self, store: Store, conn: Connection) -> None:
        self.store = store
        self.engine = store.engine
        self._conn = conn
        self.conn = conn
        self._memo: dict[Hashable, Any] = {}

    def begin(self) -> AbstractContextManager[Connection]:
        from contextlib import nullcontext
        return nullcontext(self._conn)

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = compute()
        got: T = self._memo[key]
        return got

    def current_records(self) -> list[Record]:
        return self.memo("snapshot", lambda: self.store.snapshot(self._conn))[0]

    def conflicts(self) -> list[dict[str, Any]]:
        return self.memo("snapshot", lambda: self.store.snapshot(self._conn))[1]

    def findings(self) -> list[FindingRow]:
        return self.memo("findings", lambda: self.store.findings(self._conn))

    def shop_marks(self) -> dict[str, tuple[int, int, int]]:
        return self.store.shop_marks(self._conn)

    def shop_records(self, shop: str) -> Iterator[tuple[list[Record], list[dict[str, Any]]]]:
        return self.store.shop_records(shop, self._conn)

    def finding_digests(self) -> list[tuple[str, str, str]]:
        return self.store.finding_digests(self._conn)

    def finding_file(self, path: str) -> tuple[str, bytes, str] | None:
        return self.store.finding_file(path, self._conn)

    def sources(self) -> list[dict[str, Any]]:
        return self.memo("sources", lambda: self.store.sources(self._conn))

    def manager_edits(self, sheet: str) -> ManagerCells:
        return self.memo(("edits", sheet), lambda: self.store.manager_edits(sheet, self._conn))

    def rules(self) -> Rules:
        return self.memo("rules", lambda: self.store.rules(self._conn))

    def notes(self) -> list[dict[str, Any]]:
        return self.memo("notes", lambda: self.store.notes(self._conn))

    def penalty_marks(self) -> dict[str, tuple[int, str, str]]:
        return self.memo("penalty marks", lambda: self.store.penalty_marks(self._conn))

    def loss_event_ids(self) -> set[str]:
        return self.memo("loss ids", lambda: self.store.loss_event_ids(self._conn))

    def shop_penalty_events(self, shops: Iterable[str]) -> Iterator[tuple[str, list[PenaltyEvent]]]:
        return self.store.shop_penalty_events(shops, self._conn)

    def confirmations(self) -> dict[str, str]:
        """处罚确认 per penalty event, as managers typed it on 处罚 (确认 / 免除 / 申诉)."""
        return self.memo("confirmations", lambda: {k[0]: v.get("confirm") or ""
                                                   for k, v in self.manager_edits("处罚").items()})

    def live_records(self) -> list[Record]:
        """The complaints whose source row still exists (what 逾期, 处罚 and 汇总 count)."""
        return self.memo("live", lambda: [r for r in self.current_records() if not r["deleted"]])
