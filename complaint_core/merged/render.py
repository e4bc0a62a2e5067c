"""Render the merged workbook from the store, keeping what managers typed into it.

Order of work for one rewrite: read back the manager-owned cells of the current file, save
them in the store, overlay them on the new rows, write a temp file, and if the manager saved
the target meanwhile, read back again and re-render before the atomic replace.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..atomic import atomic_write, sweep_temp_files
from ..errors import EmptyStoreRefused, MergedUnreadable
from ..gcpause import paused_gc
from ..safety import real_path
from ..store import Store
from ..store.codec import ALL_SHEET, ANCHOR_KEYS
from ..store.db import View, backfill_scan_fields
from ..store.view import RowKey, StoreView
from .archive import archive_files, archive_paths, closed_years_setting, write_archives
from .editscan import changed_cells
from .model import SHEET_ORDER, SheetData
from .penalty_parts import lay_penalties
from .pieces import ChainTally, PieceCache, namespace
from .readback import (
    LEGACY,
    RENDERED_COLUMNS,
    Cells,
    _key_text,
    cell_texts,
    cells_of,
    overlay,
    read_manager_edits,
    read_rows,
    rebase,
    rendered_head,
    rendered_rows,
    rendered_sheet,
)
from .report import (
    CASE_COLUMNS,
    OVERDUE_COLUMNS,
    PENALTY_COLUMNS,
    case_book_sheet,
    overdue_sheet,
    penalty_frame,
)
from .sheets import (
    FINDING_COLUMNS,
    AllRows,
    all_columns,
    all_sheet,
    conflict_sheet,
    findings_sheet,
    sources_sheet,
)
from .walk import Sinks, Walked, walk
from .xlsx import Book, first_data_row

log = logging.getLogger("complaint_desk.merged")


@dataclass
class RenderReport:
    path: Path
    rows: int = 0
    sheets: list[str] = field(default_factory=list)
    manager_edits: int = 0
    rerendered: bool = False
    conflicts: int = 0
    unchanged: bool = False   # nothing it shows changed since the last write: the file was left as it is
    archives: list[Path] = field(default_factory=list)   # yearly archives (re)written by this render
    reused: int = 0           # shops whose rows were taken from the last write (merged/pieces.py)
    apart: int = 0            # shops whose rows a maker process made (merged/makers.py)
    penalties_made: int = 0   # shops whose 处罚 lines were made again, not kept (merged/penalty_parts.py)
    read_back: bool = False   # managers' cells were read from the workbook by this write (not before it)


def _compose(view: StoreView, store: Store, book: Book, now: datetime, out: Path, *, head: list[list[Any]],
             cache: PieceCache | None, tally: ChainTally) -> tuple[list[SheetData], Walked]:
    """Every sheet of the contract from one walk over the store, then ``_rendered``.

    The big sheets' rows go into the book's spools as they are made; closed complaints of
    years before [store] closed_years go to the walk's ``years`` (merged/archive.py), not to
    全部投诉, 逾期 or 案例手册; 汇总 and 处罚 still count them.
    """
    closed_years = closed_years_setting(store)
    sinks = Sinks(all_rows=book.spool(all_columns(), first_data_row(all_sheet())),
                  overdue=book.spool(OVERDUE_COLUMNS, first_data_row(overdue_sheet([], now))),
                  rendered=book.spool(RENDERED_COLUMNS, first_data_row(rendered_sheet([]))),
                  cases=book.spool(CASE_COLUMNS, first_data_row(case_book_sheet([]))),
                  findings=book.spool(FINDING_COLUMNS, first_data_row(findings_sheet([]))))
    sinks.rendered.extend(head)
    penalty_rows = book.spool(PENALTY_COLUMNS, first_data_row(penalty_frame([])))
    walked = walk(view, now, closed_years=closed_years, sinks=sinks, cache=cache, tally=tally, url=store.url,
                  namespace=namespace(store, closed_years=closed_years, styles=book.indexes),
                  stored_loss=view.loss_event_ids())
    laid = lay_penalties(view, store_id=store.store_id(), styles=book.indexes, current_loss=walked.loss_ids,
                         rows=penalty_rows, rendered=sinks.rendered, cache=cache)
    summary = walked.summary.sheet(laid.totals)
    for batch in tally.cases():   # every shop's 案例手册 rows, kept in order beside the pieces
        sinks.cases.extend_xml(batch)
    tally.close_behind()   # saved while the package is put together (``_write`` waits for it)
    penalties = penalty_frame(penalty_rows)
    walked.applied += laid.applied
    walked.penalties_made = laid.made
    if cache is not None:
        cache.forget(walked.shops, walked.sources, laid.shops)
    where = [(year, [p.name for p in archive_paths(out, year, y.count)], y.count)
             for year, y in walked.years.items()]
    for o in walked.orphans:
        if not o.get("source_file"):
            # on no row of 全部投诉: _rendered keeps them, so that a new store adopting this
            # workbook keeps them too (a deleted complaint's row carries its own)
            sinks.rendered.extend(rendered_rows(ALL_SHEET, [o["ref"]], o["cells"]))
    conflicts = conflict_sheet(walked.conflicts, walked.orphans)
    walked.conflicts_shown = len(conflicts.rows)
    sheets = [
        summary,
        all_sheet(sinks.all_rows),
        overdue_sheet(sinks.overdue, now),
        penalties,
        case_book_sheet(sinks.cases),
        conflicts,
        findings_sheet(sinks.findings),
        sources_sheet(view.sources(), view.notes(), archives=sorted(where)),
    ]
    assert tuple(s.name for s in sheets) == SHEET_ORDER
    return [*sheets, rendered_sheet(sinks.rendered)], walked


def build_sheets(store: Store, now: datetime) -> list[SheetData]:
    """Every sheet of the contract as the workbook shows it (rows as values, read back from a
    workbook written the render's way, without reusing any piece): for a test or a look inside."""
    import tempfile

    from openpyxl import load_workbook

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "汇总.xlsx"
        sheets, _walked = _write(store, path, path, now, cache=None)
        wb = load_workbook(path, read_only=True)
        try:
            for sheet in sheets:
                if sheet.blocks or sheet.name not in wb.sheetnames:
                    continue
                skip = first_data_row(sheet)
                values = [list(r) for r in wb[sheet.name].iter_rows(min_row=skip + 1, values_only=True)]
                width = len(sheet.columns)
                sheet.rows = [(r + [None] * width)[:width] for r in values]
        finally:
            wb.close()
    return sheets[:len(SHEET_ORDER)]


def _write(store: Store, path: Path, out: Path, now: datetime, *,
           cache: PieceCache | None) -> tuple[list[SheetData], Walked]:
    """Write the merged workbook to ``path`` (a temp file beside ``out``) in one walk."""
    book = Book()
    head = rendered_head(store_id=store.store_id(), sent=store.recent_sent(now))
    tally = cache.tally() if cache is not None else ChainTally(None)
    try:
        # one transaction: every sheet shows the same moment, even while a scan writes penalties
        with store.engine.begin() as conn:
            sheets, walked = _compose(View(store, conn), store, book, now, out, head=head, cache=cache, tally=tally)
            book.write(path, sheets)
    finally:
        tally.close()
        if cache is not None:
            cache.release()   # the kept rows laid from their files are in the package now
    return sheets, walked


Stamp = tuple[int, int]   # (mtime_ns, size) of a workbook


def workbook_stamp(path: Path) -> Stamp | None:
    """(mtime_ns, size) of a workbook, None when there is none: what tells a manager's save
    from this program's own write (the rename of a finished file keeps both)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _read_back(store: Store, out: Path, now: datetime, *, written: Stamp | None, since: Cells,
               adopt: bool = True) -> tuple[int, Cells] | None:
    """Save into the store what managers typed into ``out``: (the number of cells saved, the
    cells taken as the manager's changes). ``written``: the stamp of this store's last write of
    ``out``; ``since``: the cells read back after it (``_read_doc``), compared with as written.

    A workbook this store did not write (a new, lost or mistyped store; the move to
    PostgreSQL) is adopted whole: every manager cell that differs from what the shops' files
    say is taken as the manager's, and the reminders it records as sent are not sent again.
    Without ``adopt`` such a workbook is left to the next write (None, nothing saved).
    """
    ours = store.store_id()
    sheets = [all_sheet(), penalty_frame([])]
    # this store's own workbook: only what the manager changed is held, not a dict per complaint
    found = changed_cells(out, sheets, since) if written is not None else None
    if found is not None and found.store_id in (None, ours):
        return _save_edits(store, out, found.edits, foreign=False, now=now), found.edits
    back = read_manager_edits(out, sheets)
    if not back.found:
        return 0, {}
    foreign = written is None or (back.store_id not in (None, ours))
    if foreign and not adopt:
        return None
    if not foreign:
        rebase(back, since)
    if foreign and not store.has_records():
        rows = len(back.cells.get(ALL_SHEET, {}))
        if rows:
            raise EmptyStoreRefused(out, rows)
    edits = back.cells if foreign else back.edits
    if foreign:
        # the archives' cells too: typed into the merged workbook before their complaints were
        # archived, kept in the lost or other store only, and shown in the archives (which are
        # never read back otherwise); the merged workbook's own cells come first
        on_rows = edits.setdefault(ALL_SHEET, {})
        for path in archive_files(out):
            try:
                archived = read_manager_edits(path, [all_sheet()], attempts=2).cells.get(ALL_SHEET, {})
            except MergedUnreadable as exc:   # not an archive after all, or torn: nothing to adopt
                log.warning("归档 %s 无法读取，其中的主管批示未采用 (archive unreadable: %s)", path.name, exc.reason)
                continue
            for key, cells in archived.items():
                on_rows.setdefault(key, cells)
    if foreign and ALL_SHEET in back.written:
        # managers' cells whose complaint the writing store no longer had: on no row of 全部投诉,
        # only on 冲突 and in _rendered; a new store keeps them too (and shows them on 冲突)
        on_rows = edits.setdefault(ALL_SHEET, {})
        for key, cells in back.written[ALL_SHEET].items():
            on_rows.setdefault(key, cells)
    changed = _save_edits(store, out, edits, foreign=foreign, now=now)
    if foreign:
        sent = store.adopt_sent(back.sent, now=now)
        store.note_adoption(out, cells=changed, sent=sent, now=now)
        log.warning("%s 不是由当前存储写出的（新的或更换过的存储）：已采用其中 %d 个主管单元格，%d 条已发送的提醒不再重发",
                    out, changed, sent)
    return changed, edits


def _save_edits(store: Store, out: Path, edits: Cells, *, foreign: bool, now: datetime) -> int:
    """Save the manager cells read back into the store (by record reference); the number saved.
    From a workbook another store wrote (``foreign``), only the cells that say something else
    than the shops' files or the store's decisions are the manager's."""
    aliases = store.aliases()
    changed = 0
    for name, got in edits.items():
        if name == ALL_SHEET:
            legacy = any(key and key[0] == LEGACY for key in got)
            got = _by_ref(got, _legacy_refs(store) if legacy else {}, aliases)
            if foreign:
                known = _shop_values(store, {key[0] for key in got})
                unknown = {key[0] for key in got} - {key[0] for key in known}
                if unknown:
                    got = _adopt_unknown(store, out, got, unknown, known)
                got = _differing(got, known)
        elif foreign:
            got = _differing(got, {key: cells for key, cells in store.manager_edits(name).items() if key in got})
        changed += store.save_manager_edits(name, got, now=now)
    return changed


def _legacy_refs(store: Store) -> dict[tuple[str, str], str]:
    """(shop, complaint id) -> 记录标识, for a workbook written before records had references."""
    out: dict[tuple[str, str], str] = {}
    for records, _conflicts in store.iter_shops():
        for r in records:
            out.setdefault((_key_text(r["shop"]), _key_text(r.get("complaint_id") or "")), r["record_ref"])
    return out


def _shop_values(store: Store, refs: set[str]) -> dict[RowKey, dict[str, Any]]:
    """记录标识 -> what the shops' files say in the manager columns of 全部投诉, for ``refs``."""
    make = AllRows()
    out: dict[RowKey, dict[str, Any]] = {}
    for records, _conflicts in store.iter_shops():
        for r in records:
            if r["record_ref"] in refs:
                row = make(r)
                out[(r["record_ref"],)] = {k: row[i] for i, k in make.owned}
    return out


def _adopt_unknown(store: Store, out: Path, got: dict[RowKey, dict[str, Any]], unknown: set[str],
                   known: dict[RowKey, dict[str, Any]]) -> dict[RowKey, dict[str, Any]]:
    """Give the manager's rows whose 记录标识 this store has never seen to their complaints.

    A complaint's key (so its 记录标识) changes when its id starts, or stops, being used twice
    in the shop's file: the anchor (受理时间, 客户, 描述…) joins the key, or leaves it. A store
    that was there saw the change and keeps an alias; a new store adopting the workbook only
    knows the new key. The row itself still says which complaint it is: the shop's complaint
    with that 门店 and 投诉编号 whose anchor fields are the row's. The anchor is asked even when
    the shop has one complaint with that id left: a row whose key this store never saw was
    one of several with its id (a lone id's key has no anchor, and is known), and the one left
    may be another complaint than the row's (the row's was deleted). A row that matches no
    complaint, or several, is left as it is (冲突 shows it: nothing is attached by guess).
    ``known`` gains the shops' values of the complaints found, for ``_differing``.
    """
    fields = ("_shop", "complaint_id", *ANCHOR_KEYS)
    said = read_rows(out, all_sheet(), unknown, fields)
    pairs = {(_key_text(v.get("_shop")), _key_text(v.get("complaint_id"))) for v in said.values()}
    pairs = {p for p in pairs if p[0] and p[1]}
    if not pairs:
        return got
    make = AllRows()
    found: dict[tuple[str, str], list[tuple[str, tuple[str, ...], dict[str, Any]]]] = {}
    for shop in sorted({shop for shop, _cid in pairs}):   # only the shops the rows name
        for records, _conflicts in store.shop_records(shop):
            for r in records:
                pair = (_key_text(r["shop"]), _key_text(r.get("complaint_id") or ""))
                if pair in pairs and not r["deleted"]:
                    row = make(r)
                    found.setdefault(pair, []).append((r["record_ref"],
                                                       tuple(_key_text(r.get(k)) for k in ANCHOR_KEYS),
                                                       {k: row[i] for i, k in make.owned}))
    moved: dict[str, str] = {}
    for ref, values in said.items():
        same = found.get((_key_text(values.get("_shop")), _key_text(values.get("complaint_id"))), [])
        anchor = tuple(_key_text(values.get(k)) for k in ANCHOR_KEYS)
        same = [c for c in same if c[1] == anchor]
        if len(same) == 1:
            moved[ref] = same[0][0]
            known[(same[0][0],)] = same[0][2]
    if not moved:
        return got
    log.info("采用旧工作簿：%d 行的记录标识已变（投诉编号重复），按门店、投诉编号和受理信息找回", len(moved))
    out_cells = {key: cells for key, cells in got.items() if key[0] not in moved}
    for key, cells in got.items():
        if key[0] in moved:
            mine = out_cells.setdefault((moved[key[0]],), {})
            for column, value in cells.items():
                mine.setdefault(column, value)   # a row that carried the key itself comes first
    return out_cells


def _by_ref(got: dict[RowKey, dict[str, Any]], refs: dict[tuple[str, str], str],
            aliases: dict[str, str]) -> dict[RowKey, dict[str, Any]]:
    out: dict[RowKey, dict[str, Any]] = {}
    for key, cells in got.items():
        if key and key[0] == LEGACY:
            ref = refs.get((key[1], key[2])) if len(key) == 3 else None
            if ref is None:
                continue   # no complaint with that shop and id any more: nothing to attach it to
        else:
            ref = aliases.get(key[0], key[0])
        out.setdefault((ref,), {}).update(cells)
    return out


def _differing(got: dict[RowKey, dict[str, Any]], built: dict[RowKey, dict[str, Any]]) -> dict[RowKey, dict[str, Any]]:
    """The cells of ``got`` that say something else than ``built`` (what the workbook shows
    without any manager: the shops' values, or the decisions the store already holds)."""
    out: dict[RowKey, dict[str, Any]] = {}
    for key, cells in got.items():
        row = built.get(key)
        diff = {c: v for c, v in cells.items() if v not in (None, "")
                and (row is None or _key_text(v) != _key_text(row.get(c)))}
        if diff:
            out[key] = diff
    return out


_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(out: Path) -> threading.Lock:
    # `complaint-desk run` renders from the watcher thread and from the scan job: one at a
    # time per workbook, or the second would read back the manager's edits mid-replace.
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(real_path(out), threading.Lock())


def render_merged(store: Store, out_path: str | Path, *, now: datetime) -> RenderReport:
    """Write every sheet of the merged workbook from the store, keeping what managers typed."""
    out = Path(out_path)
    with _lock_for(out), paused_gc():
        sweep_temp_files(out.parent)
        return _render(store, out, now)


def read_back(store: Store, out_path: str | Path, *, now: datetime) -> int | None:
    """Save into the store what a manager typed into the merged workbook since this store last
    wrote it, now rather than at the next write; the number of cells saved, None when there
    was nothing to read (not saved since our write, read already, or written by another store:
    the next write adopts that one).

    The daemon calls it when it sees the manager's save (sync/daemon.py). At 100,000
    complaints reading the cells back takes about 2.3 s; done at the manager's save, the next
    shop's save is merged without it, and the manager's cells are in the store at once.
    """
    out = Path(out_path)
    with _lock_for(out), paused_gc():
        before = workbook_stamp(out)
        written = store.written_stamp(real_path(out))
        doc = _read_doc(store, out, written)
        if before is None or written is None or before == written or _read_already(doc, before):
            return None
        since = _since(doc)
        got = _read_back(store, out, now, written=written, since=since, adopt=False)
        if got is None:
            return None
        saved, edits = got
        for name, rows in edits.items():
            overlay(since.setdefault(name, {}), rows)
        # what this workbook holds is in the store: the next write does not read it again
        # (saved again meanwhile: the next write reads the newer save); the cells read are
        # what the next read is compared with
        still = workbook_stamp(out) == before
        store.save_named(_doc_name("read back", out), json.dumps(
            {"stamp": list(before) if still else None, "written": list(written), "cells": cell_texts(since)},
            ensure_ascii=False), now=now)
        return saved


def _read_doc(store: Store, out: Path, written: Stamp | None) -> dict[str, Any] | None:
    """What ``read_back`` recorded since this store's last write of ``out`` (stamped
    ``written``); None: nothing since."""
    data = store._named(_doc_name("read back", out)) if written is not None else None
    doc: dict[str, Any] | None = json.loads(data) if data else None
    return doc if doc is not None and doc.get("written") == list(written or ()) else None


def _read_already(doc: dict[str, Any] | None, stamp: Stamp | None) -> bool:
    """Whether ``read_back`` read the workbook as it is now (``stamp``) since the last write. Our
    last write's stamp is part of the record: a copy of an older save put back later (a copy
    keeps its time) is read again."""
    return doc is not None and stamp is not None and doc.get("stamp") == list(stamp)


def _since(doc: dict[str, Any] | None) -> Cells:
    """The cells ``read_back`` saved since the last write (the record ``_read_doc`` gives)."""
    return cells_of(doc["cells"]) if doc else {}


def _doc_name(kind: str, out: Path) -> str:
    """The name of the store's small document of ``kind`` ("rendered", "read back") about ``out``."""
    from ..store.codec import content_hash

    return f"{kind}|{content_hash(str(real_path(out)))}"


def _same_as_written(store: Store, out: Path, key: str, now: datetime) -> dict[str, Any] | None:
    """What the last write recorded, when the workbook would come out the same now: the same
    store content, the same day, and no deadline passed or came within its warning time since.
    (逾期（小时） and the notes' "截至" time then stay as of the last write, which they say.)"""
    from datetime import timedelta

    from ..settings import DEFAULTS

    data = store._named(_doc_name("rendered", out))
    last: dict[str, Any] | None = json.loads(data) if data else None
    if not last or last.get("key") != key:
        return None
    # an archive moved or deleted since (by hand, by a clean-up) is written again now, not at
    # the next change of its year
    if not all(out.with_name(name).is_file() for name in last.get("archives", ())):
        return None
    at = datetime.fromisoformat(last["now"])
    if now < at or now.date() != at.date():
        return None
    warns = [s.due_soon_hours for s in store.source_settings().values()] or [DEFAULTS.due_soon_hours]
    # an open deadline that passed since, or came within its shop's warning time since
    if store.open_deadlines(now, after=at) or store.open_deadlines(now + timedelta(hours=max(warns)),
                                                                    after=at + timedelta(hours=min(warns))):
        return None
    return last


def _render(store: Store, out: Path, now: datetime) -> RenderReport:
    report = RenderReport(out)
    if store.migrate_legacy_edits():
        log.info("主管批示已改为按记录标识保存 (manager cells now kept by record reference)")
    if filled := backfill_scan_fields(store.engine):
        log.info("已为 %d 行补存扫描所需的字段 (scan columns filled for rows stored by an older version)", filled)
    before = workbook_stamp(out)
    # Untouched since our last write (same mtime and size): nobody typed into it, and reading
    # 100,000 rows back would cost a third of the rewrite.
    written = store.written_stamp(real_path(out))
    untouched = before is not None and before == written
    doc = _read_doc(store, out, written)   # a manager's save the daemon read already (read_back)
    if untouched:
        if (last := _same_as_written(store, out, store.content_marks(now), now)) is not None:
            # A scan that changed nothing, a rescan of unchanged files: the file stays as it is
            # (no rewrite, no new modification time for managers' Excel or OneDrive to react to).
            report.unchanged = True
            report.rows, report.conflicts, report.sheets = last["rows"], last["conflicts"], list(SHEET_ORDER)
            return report
    elif not _read_already(doc, before):
        # what managers typed goes into the store first: the walk then lays it over the rows,
        # and a new 处罚确认 already counts in 汇总's totals
        _read_back(store, out, now, written=written, since=_since(doc))
        report.read_back = before is not None
    key = store.content_marks(now)
    cache = PieceCache.beside(store, out)
    with atomic_write(out) as tmp:
        _sheets, walked = _write(store, tmp, out, now, cache=cache)
        if workbook_stamp(out) != before:
            # The manager saved while we wrote: keep their typing, render again.
            report.rerendered = report.read_back = True
            key = ""   # what the manager saved is in the store now: the next render writes again
            _read_back(store, out, now, written=written, since=_since(doc))
            _sheets, walked = _write(store, tmp, out, now, cache=cache)
        # the temp file's stamp, not the target's after the replace: a manager saving in
        # between must never be taken for our own write (the rename keeps mtime and size)
        ours = workbook_stamp(tmp)
    if ours is not None:
        store.save_written_stamp(real_path(out), ours)
    # after the merged workbook: a manager's cell saved by its read-back shows in the archive too
    try:
        archived = write_archives(store, out, walked.years, now, cache=cache)
    finally:
        for year in walked.years.values():
            year.close()
    report.archives = [w.path for w in archived if w.rewritten]
    report.sheets = list(SHEET_ORDER)
    report.rows = walked.rows
    report.conflicts = walked.conflicts_shown
    report.manager_edits = walked.applied
    report.reused = walked.reused
    report.apart = walked.apart
    report.penalties_made = walked.penalties_made
    if ours is not None:
        store.save_named(_doc_name("rendered", out), json.dumps({"key": key, "now": now.isoformat(), "rows": report.rows,
                                                          "conflicts": report.conflicts,
                                                          "archives": sorted(w.path.name for w in archived)}), now=now)
    return report
