"""A workbook for today, archives for history (docs/sync.md, "Archives").

The merged workbook keeps the open complaints and the closed ones of the last ``closed_years``
years (this year included). A complaint closed earlier goes to one archive workbook per year
beside it, ``<merged name>-2024.xlsx``: written when its year leaves the merged workbook, and
again only when one of its rows (or a manager's cell on one) changes. A year with more rows
than an Excel sheet holds is split into ``-2024-2.xlsx``, ``-2024-3.xlsx``…: nothing is dropped.

Archives are read-only: what a manager types into one is not read back. Their cells stay in
the store (typed into the merged workbook while the complaint was there) and are shown in the
archive; the sheet's note says so.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import pickle
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ..atomic import atomic_write
from ..safety import real_path
from ..store import Store
from ..store.codec import ALL_SHEET, content_hash
from .model import SheetData
from .pieces import PieceCache
from .sheets import AllRows, all_sheet
from .xlsx import Book, RowSpool, first_data_row, rows_that_fit

log = logging.getLogger("complaint_desk.merged")

CLOSED_STATUSES = ("已解决", "已回访", "已关闭", "不成立")
DEFAULT_CLOSED_YEARS = 2       # this year and the previous one stay in the merged workbook
SETTING = "closed_years"       # chain_rules row: [store] closed_years as the config last said
# complaints decoded from the store at a time while an archive is written: a year of a big
# chain (200,000 closed complaints) is never held in memory at once (issue 17)
ARCHIVE_BATCH = 2000
_KEYS_IN_MEMORY = 1 << 20   # a year's keys past this go to a temporary file
NOTE = ("只读归档：{year} 年已结案的投诉（按解决时间，无解决时间的按受理时间）。在此修改不会被保存；"
        "主管批示保存在数据库中并显示在此 (read-only archive: typing here is not kept)")


def closed_year(rec: dict[str, Any]) -> int | None:
    """The year a complaint closed in, or None while it is open."""
    done = rec.get("resolved_at")
    closed = (rec.get("status") in CLOSED_STATUSES or rec.get("validity") == "不成立"
              or isinstance(done, datetime))
    if not closed:
        return None
    when = done if isinstance(done, datetime) else rec.get("received_at")
    return when.year if isinstance(when, datetime) else None


def archive_rows() -> int:
    """Complaints per archive workbook: the rows Excel's sheet has under the archive's note and
    header, as the writer counts them (so a full part is never cut by the writer)."""
    sheet = all_sheet()
    sheet.note = NOTE
    return rows_that_fit(first_data_row(sheet))


def archive_paths(out: Path, year: int, rows: int) -> list[Path]:
    per = archive_rows()
    return _parts(out, year, max((rows + per - 1) // per, 1))


def archive_files(out: Path) -> list[Path]:
    """The archives beside ``out`` (``<name>-2024.xlsx``, ``<name>-2024-2.xlsx``…), whichever
    store wrote them: a store adopting the merged workbook adopts their managers' cells too."""
    named = re.compile(rf"{re.escape(out.stem)}-\d{{4}}(?:-\d+)?")
    return sorted(p for p in out.parent.glob(f"{glob.escape(out.stem)}-*{glob.escape(out.suffix)}")
                  if named.fullmatch(p.stem) and p.is_file())


def _parts(out: Path, year: int, parts: int) -> list[Path]:
    return [out.with_name(f"{out.stem}-{year}{'' if k == 1 else f'-{k}'}{out.suffix}") for k in range(1, parts + 1)]


def _stamp_name(out: Path) -> str:
    """What the store keeps each of ``out``'s archives' stamps under, but for the year."""
    return f"archive|{content_hash(str(real_path(out)))}|"


def _drop_stale(store: Store, out: Path, years: dict[int, Year], stamps: dict[str, str]) -> None:
    """Remove the archives this store wrote (``stamps``: their stamps as it keeps them) that no
    complaint is in any more: a year whose complaints were all reopened (they are back in the
    merged workbook: an archive left behind would show them closed beside it), or the parts
    past the last of a year that shrank."""
    prefix = _stamp_name(out)
    for name, stamp in stamps.items():
        try:
            year, parts = int(name[len(prefix):]), int(stamp.rsplit("|", 1)[1])
        except ValueError:
            continue   # not one this version wrote
        keep = len(archive_paths(out, year, years[year].count)) if year in years else 0
        gone = True
        for path in _parts(out, year, parts)[keep:]:
            try:
                path.unlink(missing_ok=True)
                log.info("归档 %s 已无对应的已结案投诉，已删除 (archive removed: its complaints are open again)", path.name)
            except OSError as exc:   # open in Excel on Windows: tried again at the next write
                gone = False
                log.warning("归档 %s 已过时但无法删除，下次重试 (stale archive not removed: %s)", path.name, exc)
        if year not in years and gone:
            store.forget_named(name)


@dataclass
class Written:
    year: int
    path: Path
    rows: int
    rewritten: bool


class Year:
    """One closed year's complaints as the render walks past them: their keys, in the sheet's
    order, and a fingerprint of what its archive shows (kept small: the archive is rewritten
    only when the fingerprint changes, and only then are its complaints decoded again).

    A shop's own year (``add``) keeps its keys in ``shop_keys``, sent with its piece. The
    chain's (``extend``) puts them into a temporary file as each shop's come: a chain with
    years of history held 150,000 keys, 14 MiB, through the whole render (issue 17); they are
    read back, a batch at a time, only for an archive decoded from the store."""

    def __init__(self, year: int) -> None:
        self.year = year
        self.count = 0
        self.shop_keys: list[str] = []
        self.pieces: list[tuple[str, str]] = []   # (shop, piece token) whose rows these are, in order
        self._hash = hashlib.sha256()
        self._spool: IO[bytes] | None = None
        self._chunks: list[tuple[int, int, int]] = []   # (offset, length, keys) of each shop's keys

    def add(self, r: dict[str, Any], edits: dict[tuple[str, ...], dict[str, Any]]) -> None:
        self.shop_keys.append(r["record_id"])
        self.count += 1
        self._hash.update(f"{r['record_id']}\x1f{r['content_hash']}\x1f{r['version']}\x1f{r['deleted']}\x1f"
                          f"{r['source_file']}\x1f{r['source_row']}\x1e".encode())
        cells = edits.get((r["record_ref"],))
        if cells:
            self._hash.update(json.dumps(cells, ensure_ascii=False, sort_keys=True, default=str).encode())

    def extend(self, keys: list[str], digest: str, shop: str, token: str) -> None:
        """Add a shop's complaints of this year (its own ``Year``'s keys and fingerprint; its
        piece's token: the rows encoded with it are kept beside it, ``PieceCache.archived``)."""
        if keys:
            if self._spool is None:
                self._spool = tempfile.SpooledTemporaryFile(max_size=_KEYS_IN_MEMORY)  # noqa: SIM115 - close()
            data = pickle.dumps(keys, pickle.HIGHEST_PROTOCOL)
            self._spool.seek(0, os.SEEK_END)
            self._chunks.append((self._spool.tell(), len(data), len(keys)))
            self._spool.write(data)
            self.count += len(keys)
        self.pieces.append((shop, token))
        self._hash.update(digest.encode())

    def keys(self, start: int, stop: int) -> Iterator[list[str]]:
        """The keys from ``start`` to ``stop`` (in the walk's order), a shop's at most at a time."""
        at = 0
        for offset, length, count in self._chunks:
            if at + count > start and at < stop:
                assert self._spool is not None
                self._spool.seek(offset)
                keys: list[str] = pickle.loads(self._spool.read(length))  # noqa: S301 - written just above
                yield keys[max(start - at, 0):stop - at]
            at += count

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    @property
    def fingerprint(self) -> str:
        return self._hash.hexdigest()[:32]


def _frame(note: str) -> tuple[Book, SheetData, RowSpool]:
    """An archive's workbook, its one sheet (全部投诉's columns under ``note``, nothing read
    back) and the spool its rows go into."""
    book = Book()
    sheet = all_sheet()
    sheet.note = note
    sheet.key_columns = ()   # nothing is read back from an archive
    spool = book.spool(sheet.columns, first_data_row(sheet))
    sheet.rows = spool
    return book, sheet, spool


def _write(path: Path, book: Book, sheet: SheetData) -> None:
    with atomic_write(path) as tmp:
        book.write(tmp, [sheet])


def _write_archive(store: Store, path: Path, keys: Iterator[list[str]], note: str,
                   edits: dict[tuple[str, ...], dict[str, Any]]) -> None:
    """One archive workbook of ``keys`` (in the walk's order: shop, received, record), its rows
    decoded from the store ``ARCHIVE_BATCH`` at a time and encoded into the sheet as they come."""
    book, sheet, spool = _frame(note)
    make = AllRows()
    for batch in _batches(keys, ARCHIVE_BATCH):
        place = {key: n for n, key in enumerate(batch)}
        for r in sorted(store.records_for(batch), key=lambda r: place[r["record_id"]]):
            row = make(r)
            make.lay(row, edits.get((r["record_ref"],)))
            spool.add(row)
    _write(path, book, sheet)


def _batches(lists: Iterator[list[str]], size: int) -> Iterator[list[str]]:
    """The keys of ``lists`` again, ``size`` at a time (the last batch may be smaller)."""
    batch: list[str] = []
    for keys in lists:
        at = 0
        while at < len(keys):
            take = keys[at:at + size - len(batch)]
            batch += take
            at += len(take)
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def _from_pieces(path: Path, year: Year, note: str, cache: PieceCache) -> bool:
    """The year's archive put together from the rows each shop's piece encoded (a copy of
    compressed bytes; nothing decoded): False, with nothing written, when a shop's rows are not
    kept (a cache cleared or torn, a piece of an older version). The pieces' rows were encoded
    with a ``Book``'s number styles, as this archive's are (the same on every ``Book``)."""
    book, sheet, spool = _frame(note)
    try:
        for shop, token in year.pieces:
            kept = cache.archived(shop, token)
            if kept is None or year.year not in kept:
                return False
            for segment, rows in kept[year.year]:
                spool.add_segment(segment, rows)
        if spool.count != year.count or spool.overflow:
            return False
        _write(path, book, sheet)
    finally:
        spool.close()
        cache.release()   # the shops' archived rows were copied from their files
    return True


def write_archives(store: Store, out: Path, years: dict[int, Year], now: datetime, *,
                   cache: PieceCache | None = None) -> list[Written]:
    """Write each year's archive whose rows changed since it was last written (or is missing):
    from the rows the shops' pieces encoded (``cache``) when every shop's are kept and the year
    fits one workbook, else decoded from the store."""
    done: list[Written] = []
    stamps = store.named_under(_stamp_name(out))   # every year's, in one read
    _drop_stale(store, out, years, stamps)
    edits: dict[tuple[str, ...], dict[str, Any]] | None = None   # read once, if a year is decoded
    per = archive_rows()
    for year in sorted(years):
        count = years[year].count
        paths = archive_paths(out, year, count)
        name = f"{_stamp_name(out)}{year}"
        stamp = years[year].fingerprint + f"|{len(paths)}"
        rewrite = stamps.get(name) != stamp or not all(p.exists() for p in paths)
        for k, path in enumerate(paths):
            part = min(count, (k + 1) * per) - k * per
            if rewrite:
                note = NOTE.format(year=year) + (f"（第 {k + 1}/{len(paths)} 部分）" if len(paths) > 1 else "")
                if not (len(paths) == 1 and cache is not None and _from_pieces(path, years[year], note, cache)):
                    if edits is None:
                        edits = store.manager_edits(ALL_SHEET)
                    _write_archive(store, path, years[year].keys(k * per, (k + 1) * per), note, edits)
            done.append(Written(year, path, part, rewrite))
        if rewrite:
            store.save_named(name, stamp, now=now)
            log.info("%d 年已结案的投诉 %d 条已写入归档 %s", year, count, ", ".join(p.name for p in paths))
    return done


def closed_years_setting(store: Store) -> int:
    """[store] closed_years as the config last saved it (``complaint-desk run``); 2 without one."""
    data = store._named(SETTING)
    try:
        return max(int(data), 1) if data else DEFAULT_CLOSED_YEARS
    except ValueError:
        return DEFAULT_CLOSED_YEARS


def save_closed_years(store: Store, years: int, *, now: datetime) -> None:
    if store._named(SETTING) != str(years):
        store.save_named(SETTING, str(years), now=now)
