"""An older store's rows brought to the stored JSON this version writes (``codec.ROW_JSON``).

A stored row's hash is the hash of its JSON's bytes. Left in an older format, every complaint
would read as changed the next time its shop's file is read (a version in its history for
nothing), and a complaint held in two files, one read since the upgrade and one not, would
show on 冲突 with no field differing. So the rows are written again, once, in one transaction,
by the first command of this version that opens the store: the same values, new bytes and
hash. A killed rewrite leaves the store as it was, to be rewritten at the next open.

The history's older versions keep their JSON and hash as written (each hash is of its own
bytes); the version a file holds now shows its row's new hash.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from . import tables as t
from .codec import ROW_JSON, canonical, content_hash, loads

log = logging.getLogger("complaint_desk.store")

MARK = "row_json"   # chain_rules row: the format of every stored row's JSON
BATCH = 2000        # rows decoded and written at a time: memory stays a batch's worth
WAIT = 900.0        # seconds to wait for another process that is rewriting the same store


def row_format(c: Connection) -> int:
    """The format of the store's rows: 1 when no version has marked it (an older store)."""
    got = c.execute(select(t.chain_rules.c.data).where(t.chain_rules.c.name == MARK)).scalar()
    try:
        return int(got) if got is not None else 1
    except ValueError:
        return 1


def reencode(engine: Engine) -> int:
    """Rewrite the rows of a store an older version wrote; how many were rewritten (0 when the
    store is of this format already, or another process has just rewritten it)."""
    give_up = time.monotonic() + WAIT
    while True:
        with engine.connect() as c:
            if row_format(c) >= ROW_JSON:
                return 0
        try:
            return _rewrite(engine)
        except IntegrityError:   # another process marked the store first: it is rewritten
            return 0
        except OperationalError as exc:
            # SQLite: another process holds the store past its busy timeout, most likely
            # rewriting it too; the mark tells when it is done
            if "locked" not in str(exc) or time.monotonic() > give_up:
                raise
            time.sleep(1.0)


def _rewrite(engine: Engine) -> int:
    sr = t.source_rows
    started = time.monotonic()
    done = 0
    with engine.begin() as c:
        # the mark first: the transaction takes the store's write lock before it reads a row,
        # so a second process waits for this one instead of rewriting the rows again
        # (a mark this version cannot read is replaced)
        c.execute(delete(t.chain_rules).where(t.chain_rules.c.name == MARK))
        c.execute(insert(t.chain_rules).values(name=MARK, data=str(ROW_JSON), saved_at=datetime.now()))
        total = c.execute(select(func.count()).select_from(sr)).scalar() or 0
        if total:
            log.info("正在把 %s 条存储记录转换为新格式（只做一次）(re-encoding %s stored rows once)", total, total)
        last = 0
        stmt = (update(sr).where(sr.c.id == bindparam("b_id"))
                .values(data=bindparam("b_data"), content_hash=bindparam("b_hash")))
        while rows := c.execute(select(sr.c.id, sr.c.data).where(sr.c.id > last).order_by(sr.c.id).limit(BATCH)).all():
            last = rows[-1][0]
            params = [p for row_id, data in rows if (p := _again(row_id, data)) is not None]
            if params:
                c.execute(stmt, params)
                done += len(params)
        if done:
            _current_versions(c)
    if total:
        took = time.monotonic() - started
        log.info("已转换 %s 条存储记录，用时 %.1f 秒 (re-encoded %s rows in %.1f s)", done, took, done, took)
    return done


def _again(row_id: int, data: str) -> dict[str, Any] | None:
    """The new JSON and hash of one stored row; None when it is written so already, or when it
    is not JSON a version wrote (edited by hand): left as it is, it only reads as changed the
    next time its file is read."""
    try:
        value = loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    new = canonical(value)
    text = new.decode("utf-8")
    if text == data:
        return None
    return {"b_id": row_id, "b_data": text, "b_hash": content_hash(new)}


def _current_versions(c: Connection) -> None:
    """The version each file holds now keeps its JSON in source_rows (``tables.CURRENT``): it
    takes that row's new hash."""
    rv, sr = t.row_versions.c, t.source_rows.c
    now_hash = (select(sr.content_hash).where(sr.source_path == rv.source_path)
                .where(sr.record_key == rv.record_key).limit(1).scalar_subquery())
    c.execute(update(t.row_versions).where(rv.data == t.CURRENT)
              .values(content_hash=func.coalesce(now_hash, rv.content_hash)))
