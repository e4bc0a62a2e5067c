"""What one shop contributes to the merged workbook, kept between writes (issue 17).

When one shop of a hundred saves, the other ninety-nine shops' rows have not changed: their
全部投诉 rows, already encoded and compressed, their 汇总 counts, their 逾期 lines and their
cases are taken from the last write instead of being decoded from the store and encoded again.
A piece is used only when everything it was made from is the same:

- the shop's stored rows (``Store.shop_marks``: any added or changed row moves the mark);
- the managers' cells on the shop's complaints (a hash over their 记录标识);
- everything chain-wide that a row can show: the rules, every file's 设置, [store] closed_years,
  the store, the cell styles and this module's format (``namespace``);
- the clock: a piece made at T holds until the first moment something in it would read
  differently (a resolved time still ahead, the new year that moves closed complaints to their
  archive). The state of every deadline still open (not yet, due soon, overdue), its 逾期 line
  from the moment it is due soon and its hours late are worked out at each write from the piece.

Pieces are files in a folder of their own beside the store (one per shop, written whole and
renamed into place), loaded one at a time: memory stays one shop's worth. A piece's compressed
rows stay in its file (``keptfile.py``) and go from there into the package.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import pickle
import sqlite3
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from ..overdue import STATE_ZH
from ..safety import real_path
from ..store import Store
from ..store.view import ManagerCells
from . import keptfile
from .deflate import FileSegment, Segment
from .penalty_parts import PenaltyPart
from .report import CaseKey, Summary

log = logging.getLogger("complaint_desk.merged")

FORMAT = 7   # raise when a piece's shape or the rows it encodes change (7: repeat counts packed in batches)


# One 逾期 line: the whole row when it no longer changes (a deadline met late), else
# (due, warning time, cells before the state, cells after the hours late, explanation without
# "截至 … 仍未完成") for a deadline still open: whether it is listed yet (from due - warning time
# on), the state, the hours late and the end of the explanation are worked out at each write.
# Tuples, not objects: a hundred shops' pieces hold ninety thousand of them. The encoded cells
# are UTF-8 (``xml_bytes``), as the sheet's file holds them: a piece is loaded at every write,
# and 30 MB of Chinese text cost a shop's save 0.1 s to read back as ``str`` and to encode
# again for the file.
Line = bytes | tuple[datetime, timedelta, bytes, bytes, str]

# a shop of this many 逾期 lines and more keeps them packed (``pack_lines``): below, the render
# would unpack every shop's lines at each write for little memory (0.2 ms a shop of 1,000
# complaints, 20 ms a write of a hundred)
PACK_FROM = 4_000


@dataclass(frozen=True, slots=True)
class PackedLines:
    """A batch of 逾期 lines, pickled and compressed: a shop of 30,000 complaints has 22,000
    lines, 12 MiB as they are and 2 MiB packed, and the render holds the pieces of the shops
    it is about to lay (issue 17). Unpacked a batch at a time as the piece is laid."""

    data: bytes


def pack_lines(lines: list[Line]) -> PackedLines:
    return PackedLines(zlib.compress(pickle.dumps(lines, pickle.HIGHEST_PROTOCOL), 1))


def unpack_lines(batch: list[Line] | PackedLines) -> list[Line]:
    if isinstance(batch, PackedLines):
        # our own pickle, from a piece this user's process made (see ``keptfile``)
        lines: list[Line] = pickle.loads(zlib.decompress(batch.data))  # noqa: S301
        return lines
    return batch


def xml_bytes(xml: str) -> bytes:
    """Encoded rows or cells as the sheet's file holds them (``RowSpool`` writes the same)."""
    return xml.encode("utf-8", "replace")


Archived = dict[int, list[tuple[Segment | FileSegment, int]]]   # year -> (rows encoded and compressed, how many)


@dataclass
class Piece:
    """One shop's part of the merged workbook as of ``made``."""

    mark: str                         # the shop's rows and the namespace it was made in
    token: str                        # this piece among all (the chain's tally keeps shops by it)
    refs: list[str]                   # 记录标识 of the shop's complaints
    edits: str                        # hash of the managers' cells on them
    made: datetime
    until: datetime                   # first moment something in it reads differently
    rows: int                         # 全部投诉 rows (complaints not archived)
    # (rows encoded and compressed, how many): in memory, or left in a file (kept, or spilt)
    all_xml: list[tuple[Segment | FileSegment, int]]
    rendered_rows: int
    rendered_xml: list[tuple[Segment | FileSegment, int]]
    applied: int                      # managers' cells laid over the shop's values
    summary: Summary                  # 汇总's counts; the states of ``dyn`` deadlines left out
    dyn: list[tuple[str, datetime, timedelta]]   # open deadlines due soon or overdue at ``made``
    lines: list[list[Line] | PackedLines]   # 逾期, a batch per chunk of the shop's complaints
    cases: list[tuple[CaseKey, bytes]]  # 案例手册 rows, encoded (``xml_bytes``)
    loss_ids: set[str]
    conflicts: list[dict[str, Any]]
    orphans: list[dict[str, Any]]     # managers' cells on the shop's deleted complaints
    seen: set[str]                    # 记录标识 with managers' cells among the shop's complaints
    years: dict[int, tuple[list[str], str]] = field(default_factory=dict)   # archived: keys, digest
    # the archived complaints' rows, encoded as 全部投诉's, by year: kept beside the piece in a
    # file of their own (``take_archived``, ``PieceCache.save_archived``), read only when a
    # year's archive is written, never sent or loaded with the piece
    archived: Archived = field(default_factory=dict)

    def usable(self, mark: str, edits: ManagerCells, now: datetime) -> bool:
        return self.mark == mark and self.made <= now < self.until and self.edits == edits_hash(self.refs, edits)


class ChainTally:
    """汇总's repeat counts over the whole chain (customers who complained more than once, and
    what was complained about more than once), kept per shop in a SQLite file beside the pieces:
    a shop's save replaces that shop's counts only, and nothing of the chain is held in memory.

    ``sync`` makes the shop's counts agree with its piece (by the piece's token); a missing or
    broken file is made again from the pieces the walk lays.
    """

    def __init__(self, path: Path | None) -> None:
        # None: SQLite's own temporary database, for this write only (its file is deleted as
        # it is opened, so nothing is left behind by a write that is killed)
        self.path = path
        self._synced = 0          # shops whose counts this write replaced
        self._recount = False     # the totals are summed again before they are read
        self._unindexed = False   # 案例手册's index is made again before the rows are read
        self._summing: threading.Thread | None = None   # summing them while the walk goes on
        self._failed: sqlite3.Error | None = None       # what stopped that
        self._closing: threading.Thread | None = None     # what closes the file (``close_behind``)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError:
            if path is None:
                raise
            path.unlink(missing_ok=True)     # torn or foreign: a cache, made again
            self._db = self._open()

    # the file's layout; a file of another layout is a cache of another version: made again
    LAYOUT = 4

    def _open(self) -> sqlite3.Connection:
        # the totals are summed in a thread of their own (``settle``), never while this one uses it
        if self.path is None:
            db = sqlite3.connect("", check_same_thread=False)   # new and empty: no layout to check
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            db = sqlite3.connect(self.path, check_same_thread=False)
            if db.execute("PRAGMA user_version").fetchone()[0] != self.LAYOUT:
                db.close()
                for extra in ("", "-wal", "-shm"):
                    Path(f"{self.path}{extra}").unlink(missing_ok=True)
                db = sqlite3.connect(self.path, check_same_thread=False)
                db.execute(f"PRAGMA user_version = {self.LAYOUT}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE IF NOT EXISTS shops (shop TEXT PRIMARY KEY, token TEXT NOT NULL)")
        # each shop's counts, kept in shop order: a shop's counts are written (and taken out)
        # in one stretch of the file, not one key here and one there among 200,000 (a first
        # write of 100 shops stored them in half the time); and the chain's totals, kept up
        # to date as shops come and go
        db.execute("CREATE TABLE IF NOT EXISTS tally (shop TEXT NOT NULL, what TEXT NOT NULL, k TEXT NOT NULL, "
                   "n INTEGER NOT NULL, label TEXT NOT NULL, PRIMARY KEY (shop, what, k)) WITHOUT ROWID")
        db.execute("CREATE TABLE IF NOT EXISTS totals (what TEXT NOT NULL, k TEXT NOT NULL, total INTEGER NOT NULL, "
                   "PRIMARY KEY (what, k)) WITHOUT ROWID")
        db.execute("CREATE INDEX IF NOT EXISTS ix_totals ON totals (what, total)")
        # 案例手册's rows of every shop, kept in the sheet's order by the index: a shop's save
        # replaces that shop's rows, and the sheet is read in order without sorting the chain's
        # cases again (they went through a temporary database at every write). The shop and
        # the row's place in its piece break ties as the walk's order did (shops in code-point
        # order, SQLite's BINARY)
        db.execute("CREATE TABLE IF NOT EXISTS cases (shop TEXT NOT NULL, i INTEGER NOT NULL, cat TEXT, rank INTEGER, "
                   "t REAL, row BLOB NOT NULL, PRIMARY KEY (shop, i)) WITHOUT ROWID")
        db.execute(self.CASES_INDEX)
        db.execute("SELECT count(*) FROM shops").fetchone()
        return db

    # The index holds each row's bytes too, so the sheet is read from the index alone, in
    # order: read through an index of the keys, every row was one more look-up in the table, and
    # 120,000 cases (100 shops x 3,000 complaints) took 0.5 s of every save; 0.1 s so. It
    # doubles the file (82 -> 171 MB there).
    CASES_INDEX = "CREATE INDEX IF NOT EXISTS ix_cases ON cases (cat, rank, t, shop, i, row)"

    # shops synced in one write from which the totals are summed again at the end rather than
    # kept up to date key by key: a first write of 100 shops upserted 200,000 totals one at a
    # time. From then on the cases go in without their index too, which is made again once,
    # in order, beside the totals (the same 120,000 cases: 2.3 s inserted into the index one by
    # one, 0.4 s inserted without it and 0.7 s to make it, in SQLite without Python's lock)
    RECOUNT_FROM = 8

    def sync(self, shop: str, piece: Piece) -> None:
        got = self._db.execute("SELECT token FROM shops WHERE shop = ?", (shop,)).fetchone()
        if got is not None and got[0] == piece.token:
            return
        # one transaction for the whole write (committed by ``close``): a write that dies
        # half-way leaves the counts and the tokens as they were, together
        self._synced += 1
        self._drop(shop)
        for what, tally in (("c", piece.summary.customers), ("s", piece.summary.subjects)):
            # in key order, a batch of the piece's packed counts at a time (report.Repeats)
            self._db.executemany("INSERT INTO tally VALUES (?, ?, ?, ?, ?)",
                                 ((shop, what, k, n, label) for k, n, label in tally.labelled()))
            if not self._recount:
                self._db.executemany("INSERT INTO totals VALUES (?, ?, ?) ON CONFLICT (what, k) DO UPDATE "
                                     "SET total = total + excluded.total",
                                     ((what, k, n) for k, n, _label in tally.labelled()))
        self._db.executemany("INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?)",
                             ((shop, i, *key, row) for i, (key, row) in enumerate(piece.cases)))
        self._db.execute("INSERT OR REPLACE INTO shops VALUES (?, ?)", (shop, piece.token))
        if self._synced >= self.RECOUNT_FROM:
            self._recount = True
            if not self._unindexed:
                self._unindexed = True
                self._db.execute("DROP INDEX IF EXISTS ix_cases")

    def _drop(self, shop: str) -> None:
        """Take a shop's counts out of the totals (one indexed update per key it had)."""
        counted = self._db.execute("SELECT n, what, k FROM tally WHERE shop = ?", (shop,)).fetchall()
        if counted:
            if not self._recount:
                self._db.executemany("UPDATE totals SET total = total - ? WHERE what = ? AND k = ?", counted)
                self._db.executemany("DELETE FROM totals WHERE what = ? AND k = ? AND total <= 0",
                                     [(what, k) for _n, what, k in counted])
            self._db.execute("DELETE FROM tally WHERE shop = ?", (shop,))
        self._db.execute("DELETE FROM cases WHERE shop = ?", (shop,))
        self._db.execute("DELETE FROM shops WHERE shop = ?", (shop,))

    def settle(self, shops: set[str]) -> None:
        """Every shop of this write is synced: forget the shops the store no longer has, and
        start summing the totals (and making 案例手册's index) again if they are to be
        (``RECOUNT_FROM``). SQLite does both without holding Python's lock, so a first write's
        150,000 totals are summed while the walk encodes the files' 校验问题 rows, not after
        it; they are waited for when read (``rows``, ``repeated``, ``cases``, ``close``)."""
        self.keep(shops)
        if self._recount and self._summing is None:
            self._summing = threading.Thread(target=self._sum, name="complaint-desk-tally", daemon=True)
            self._summing.start()

    def _sum(self) -> None:
        try:
            self._totals()
        except sqlite3.Error as exc:   # raised where the totals are read, as if summed there
            self._failed = exc

    def _settled(self) -> None:
        if self._summing is not None:
            self._summing.join()
            self._summing = None
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed

    def _totals(self) -> None:
        """Sum the totals again from every shop's counts, and make 案例手册's index again, once,
        if this write changed many shops."""
        if self._recount:
            self._db.execute("DELETE FROM totals")
            self._db.execute("INSERT INTO totals SELECT what, k, sum(n) FROM tally GROUP BY what, k HAVING sum(n) > 0")
            self._recount = False
            self._synced = 0
        if self._unindexed:
            self._db.execute(self.CASES_INDEX)
            self._unindexed = False

    def keep(self, shops: set[str]) -> None:
        """Forget the counts of shops the store no longer has."""
        for shop in [s for (s,) in self._db.execute("SELECT shop FROM shops") if s not in shops]:
            self._drop(shop)

    def _labels(self, what: str, keys: list[str]) -> dict[str, str]:
        """Each key's label: that of the first shop (in the sheet's order: code points, SQLite's
        BINARY) that has it. One pass over the counts for all the keys shown."""
        if not keys:
            return {}
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (k TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("DELETE FROM wanted")
        self._db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(k,) for k in keys])
        got: dict[str, str] = {}
        # in shop order, so the first label met for a key is the first shop's
        for k, label in self._db.execute("SELECT k, label FROM tally WHERE what = ? AND k IN (SELECT k FROM wanted) "
                                         "ORDER BY shop", (what,)):
            got.setdefault(k, label)
        return got

    def rows(self, what: str, top: int = 20) -> list[list[Any]]:
        """[label, complaints] of keys counted more than once, most first, ties by label."""
        self._settled()
        self._totals()
        q = "SELECT total FROM totals WHERE what = ? AND total > 1 ORDER BY total DESC LIMIT 1 OFFSET ?"
        floor = self._db.execute(q, (what, top - 1)).fetchone()
        # every key at or above the top-th count (ties at the edge are ordered by label too)
        least = int(floor[0]) if floor else 2
        keys = self._db.execute("SELECT k, total FROM totals WHERE what = ? AND total >= ?", (what, least)).fetchall()
        labels = self._labels(what, [k for k, _total in keys])
        found = sorted(((int(total), labels.get(k, k)) for k, total in keys), key=lambda r: (-r[0], r[1]))
        return [[label, total] for total, label in found[:top]]

    def cases(self, batch: int = 2000) -> Iterator[list[bytes]]:
        """案例手册's rows of every shop synced, in the sheet's order (category, outcome, latest
        first; equal cases in the walk's order), ``batch`` at a time."""
        self._settled()
        self._totals()   # the index, when the shops were synced without it (``RECOUNT_FROM``)
        cursor = self._db.execute("SELECT row FROM cases ORDER BY cat, rank, t, shop, i")
        while got := cursor.fetchmany(batch):
            yield [row for (row,) in got]

    def repeated(self, what: str) -> int:
        self._settled()
        self._totals()
        return int(self._db.execute("SELECT count(*) FROM totals WHERE what = ? AND total > 1", (what,)).fetchone()[0])

    def close(self) -> None:
        """Save the counts and close the file (waiting for ``close_behind``'s, if it runs)."""
        if self._closing is None:
            self._closing = threading.current_thread()   # a second close has nothing left to do
            self._close()
        elif self._closing is not threading.current_thread():
            self._closing.join()

    def close_behind(self) -> None:
        """``close`` in a thread of its own, once the render has read what it needs: committing
        a first write's counts and cases (30 MB) took 0.1 s at the end of the write, while the
        other core had nothing to do; it is done while the package is put together, and
        ``close`` waits for it."""
        if self._closing is None:
            self._closing = threading.Thread(target=self._close, name="complaint-desk-tally-close", daemon=True)
            self._closing.start()

    def _close(self) -> None:
        try:
            self._settled()
            self._totals()
            self._db.commit()
        except Exception as exc:  # noqa: BLE001 - a cache: the next write counts the shops again (and
            # in ``close_behind``'s thread nothing would hear of it but this line)
            log.warning("汇总缓存未能保存 (tally not saved: %s)", exc)
        finally:
            self._db.close()


def edits_hash(refs: list[str], edits: ManagerCells) -> str:
    h = hashlib.sha256()
    for ref in refs:
        cells = edits.get((ref,))
        if cells:
            h.update(json.dumps([ref, cells], ensure_ascii=False, sort_keys=True, default=str).encode())
    return h.hexdigest()


def namespace(store: Store, *, closed_years: int, styles: dict[str, int]) -> str:
    """What every piece depends on besides its own shop's rows (see the module's docstring)."""
    from ..store import dcjson

    settings = sorted((p, dcjson.dumps(s)) for p, s in store.source_settings().items())
    parts = [FORMAT, store.store_id(), closed_years, sorted(styles.items()), settings,
             dcjson.dumps(store.rules())]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, default=str).encode()).hexdigest()


def shop_mark(namespace: str, mark: tuple[int, int, int]) -> str:
    return f"{namespace}|{mark[0]}|{mark[1]}|{mark[2]}"


def year_end(now: datetime) -> datetime:
    return datetime(now.year + 1, 1, 1, tzinfo=now.tzinfo)


@functools.cache
def _handles() -> int:
    """How many kept files a write may hold open for their segments: half of what the system
    lets a process open, less a margin for the store, the spools and the pipes to the makers.
    Where another process cannot replace a file held open (Windows), none: the segments are read.

    The soft limit is first raised toward the hard one, up to 4,096, as Go does for every
    program: 256 by default on macOS, 1,024 on most Linux systems, against a chain of 300 shops
    that keeps a piece, a findings file and a 处罚 part for each."""
    return _open_budget()


def _open_budget() -> int:
    if sys.platform == "win32":
        return 0
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass   # a system that refuses keeps its own limit
    if soft == resource.RLIM_INFINITY:
        soft = 4096
    return max(0, soft // 2 - 64)


class PieceCache:
    """The pieces of one merged workbook, one file per shop in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._warned = False
        self._open: list[BinaryIO] = []   # kept files whose segments were left in them

    def tally(self) -> ChainTally:
        """The chain's repeat counts beside the pieces (a temporary one when the folder cannot
        be written: that write then counts every shop again)."""
        try:
            return ChainTally(self.folder / "tally.sqlite")
        except (OSError, sqlite3.Error) as exc:
            if not self._warned:
                self._warned = True
                log.warning("缓存未能保存，下次写出将完整重做 (pieces not saved in %s: %s)", self.folder, exc)
            return ChainTally(None)

    @classmethod
    def beside(cls, store: Store, out: Path) -> PieceCache:
        """The folder for ``out``'s pieces: beside a SQLite store file, else in the user's cache
        folder (PostgreSQL); private to the user (pieces are loaded with pickle)."""
        name = hashlib.sha256(f"{store.url}|{real_path(out)}".encode()).hexdigest()[:16]
        if store.url.startswith("sqlite:///") and store.url != "sqlite:///:memory:":
            db = Path(store.url[len("sqlite:///"):])
            folder = db.parent / f".{db.name}.pieces" / name
        else:
            base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
            folder = base / "complaint-desk" / "pieces" / name
        return cls(folder)

    def _path(self, shop: str, kind: str = "piece") -> Path:
        """The file of ``shop``'s piece, or of another ``kind`` of part kept per shop or file."""
        return self.folder / f"{hashlib.sha256(shop.encode()).hexdigest()[:24]}.{kind}"

    def has(self, shop: str) -> bool:
        """Whether a piece of ``shop`` is kept (usable or not: ``load`` tells)."""
        return self._path(shop).is_file()

    def _read(self, path: Path, what: str, wanted: Callable[[Any], bool], *, only_check: bool = False) -> Any:
        """What ``path`` holds when ``wanted`` takes it, else None; None too when it is missing,
        torn or of another version (only a cache miss). Its segments stay in the file
        (``FileSegment``), which stays open until ``release``, while handles last; else they
        are read. ``only_check``: nothing is read or kept open (the result is only tested)."""
        try:
            fh = open(path, "rb")  # noqa: SIM115 - kept open past this call when its segments stay in it
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.info("%s 的缓存无法读取，重新生成 (cache unreadable: %s)", what, exc)
            return None
        kept = False
        try:
            leave = only_check or len(self._open) < _handles()
            got = keptfile.read(fh, wanted, leave=leave)
            if got is not None and leave and not only_check:
                self._open.append(fh)
                kept = True
            return got
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file is only a cache miss
            log.info("%s 的缓存无法读取，重新生成 (cache unreadable: %s)", what, exc)
            return None
        finally:
            if not kept:
                fh.close()

    def release(self) -> None:
        """Close the files whose segments were left in them: once the package they went into
        is written (or given up)."""
        opened, self._open = self._open, []
        for fh in opened:
            fh.close()

    def load(self, shop: str, wanted: Callable[[Piece], bool] | None = None) -> Piece | None:
        """The kept piece of ``shop`` if ``wanted`` (default: any) takes it; its rows stay in
        its file until ``release``."""
        def take(got: Any) -> bool:
            return isinstance(got, Piece) and (wanted is None or wanted(got))

        piece: Piece | None = self._read(self._path(shop), f"门店 {shop}", take)
        return piece

    def save(self, shop: str, piece: Piece) -> bool:
        """Keep ``shop``'s piece; False when it could not be kept (the warning is logged once)."""
        return self._save(self._path(shop), piece)

    def _save(self, path: Path, value: Any) -> bool:
        """``value`` into ``path`` (``keptfile``'s layout), whole or not at all."""
        tmp: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".piece-")
            with os.fdopen(fd, "w+b") as fh:
                keptfile.dump(value, fh)
            os.replace(tmp, path)
            tmp = None
            return True
        except OSError as exc:
            # a full or read-only disk costs the next write its speed, never its content
            if not self._warned:
                self._warned = True
                log.warning("缓存未能保存，下次写出将完整重做 (pieces not saved in %s: %s)", self.folder, exc)
            return False
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def penalties(self, shop: str, wanted: Callable[[PenaltyPart], bool]) -> PenaltyPart | None:
        """The shop's part of 处罚 as the last write made it (merged/penalty_parts.py), if
        ``wanted`` takes it; its rows stay in its file until ``release``."""
        def take(got: Any) -> bool:
            return isinstance(got, PenaltyPart) and wanted(got)

        part: PenaltyPart | None = self._read(self._path(shop, "penalties"), f"门店 {shop} 的处罚", take)
        return part

    def save_penalties(self, shop: str, part: PenaltyPart) -> None:
        self._save(self._path(shop, "penalties"), part)

    def save_archived(self, shop: str, token: str, archived: Archived) -> None:
        """The archived rows of ``shop``'s piece ``token`` (``take_archived``)."""
        self._save(self._path(shop, "archived"), (token, archived))

    def archived(self, shop: str, token: str) -> Archived | None:
        """The archived rows kept beside ``shop``'s piece ``token``; None when missing, torn or
        of another piece (the archive's complaints are then decoded from the store). Its rows
        stay in its file until ``release``."""
        def take(got: Any) -> bool:
            return isinstance(got, tuple) and len(got) == 2 and got[0] == token and isinstance(got[1], dict)

        got = self._read(self._path(shop, "archived"), f"门店 {shop} 的归档行", take)
        return None if got is None else got[1]

    @staticmethod
    def _findings_of(key: str) -> Callable[[Any], bool]:
        def take(got: Any) -> bool:
            return (isinstance(got, tuple) and len(got) == 3 and got[0] == key
                    and isinstance(got[1], Segment | FileSegment))
        return take

    def findings(self, source: str, key: str) -> tuple[Segment | FileSegment, int] | None:
        """A file's 校验问题 rows as the last write encoded them, if its findings are the same;
        they stay in their file until ``release``."""
        got = self._read(self._path(source, "findings"), source, self._findings_of(key))
        return None if got is None else (got[1], int(got[2]))

    def has_findings(self, source: str, key: str) -> bool:
        """Whether ``findings`` would give the file's rows (a maker asks, never to lay them)."""
        return self._read(self._path(source, "findings"), source, self._findings_of(key), only_check=True) is not None

    def save_findings(self, source: str, key: str, segment: Segment, rows: int) -> None:
        self._save(self._path(source, "findings"), (key, segment, rows))

    def forget(self, shops: set[str], sources: set[str], penalty_shops: set[str]) -> None:
        """Remove the pieces of shops, the findings of files and the 处罚 parts of shops the
        store no longer has."""
        if not self.folder.is_dir():
            return
        wanted = {self._path(shop).name for shop in shops} | {self._path(s, "findings").name for s in sources}
        wanted |= {self._path(shop, "penalties").name for shop in penalty_shops}
        wanted |= {self._path(shop, "archived").name for shop in shops}
        kinds = ("piece", "findings", "penalties", "archived")
        for path in [p for kind in kinds for p in self.folder.glob(f"*.{kind}")]:
            if path.name not in wanted:
                path.unlink(missing_ok=True)


def take_archived(piece: Piece) -> Archived:
    """The piece's archived rows, taken out of it before it is pickled (to the cache, to the
    render): a shop's years of history are not sent or loaded at every write."""
    archived, piece.archived = piece.archived, {}
    return archived


def state_cell(state: str) -> bytes:
    return xml_bytes(f'<c t="inlineStr"><is><t>{STATE_ZH[state]}</t></is></c>')
