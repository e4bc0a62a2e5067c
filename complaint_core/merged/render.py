"""Render the merged workbook from the store, keeping what managers typed into it.

Order of work for one rewrite: read back the manager-owned cells of the current file, save
them in the store, overlay them on the new rows, write a temp file, and if the manager saved
the target meanwhile, read back again and re-render before the atomic replace.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..atomic import atomic_write, sweep_temp_files
from ..errors import EmptyStoreRefused
from ..gcpause import paused_gc
from ..store import Store
from ..store.codec import ALL_SHEET
from ..store.db import View, backfill_scan_fields
from ..store.view import RowKey, StoreView
from .archive import archive_paths, closed_years_setting, split, write_archives
from .model import SHEET_ORDER, SheetData
from .readback import LEGACY, _key_text, read_manager_edits, rendered_sheet
from .report import case_book_sheet, overdue_sheet, penalty_sheet, summary_sheet
from .sheets import REF_KEY, all_sheet, conflict_sheet, findings_sheet, orphan_edits, sources_sheet
from .xlsx import write_workbook

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


def build_sheets(store: Store, now: datetime, archives: dict[int, list[dict[str, Any]]] | None = None,
                 out: Path | None = None) -> list[SheetData]:
    """Every sheet of the contract, from the store and the clock alone.

    Closed complaints of years before [store] closed_years go to ``archives`` (year -> records),
    not to 全部投诉, 逾期 or 案例手册; 汇总 and 处罚 still count them (merged/archive.py).
    """
    closed_years = closed_years_setting(store)
    # one transaction: every sheet shows the same moment, even while a scan writes penalties
    with store.engine.begin() as conn:
        view: StoreView = View(store, conn)
        records = view.current_records()
        kept, years = split(records, now, closed_years)
        if archives is not None:
            archives.clear()
            archives.update(years)
        only = {r["record_id"] for r in kept} if years else None
        where = [(year, [p.name for p in archive_paths(out or Path("汇总.xlsx"), year, len(recs))], len(recs))
                 for year, recs in years.items()]
        sheets = [
            summary_sheet(view, now),
            all_sheet(kept),
            overdue_sheet(view, now, only=only),
            penalty_sheet(view, now),
            case_book_sheet(view, now, only=only),
            conflict_sheet(view.conflicts(), orphan_edits(records, view.manager_edits(ALL_SHEET))),
            findings_sheet(view.findings()),
            sources_sheet(view.sources(), view.notes(), archives=sorted(where)),
        ]
    assert tuple(s.name for s in sheets) == SHEET_ORDER
    return sheets


def _overlay(sheets: list[SheetData], store: Store) -> int:
    applied = 0
    for sheet in sheets:
        owned = [i for i, c in enumerate(sheet.columns) if c.manager_owned]
        if not sheet.key_columns or not owned:
            continue
        edits = store.manager_edits(sheet.name)
        if not edits:
            continue
        idx = [next(i for i, c in enumerate(sheet.columns) if c.key == k) for k in sheet.key_columns]
        for row in sheet.rows:
            got = edits.get(tuple(_key_text(row[i]) for i in idx))
            if not got:
                continue
            for i in owned:
                key = sheet.columns[i].key
                if key in got:
                    row[i] = got[key]
                    applied += 1
    return applied


def _record(store: Store, sheets: list[SheetData], now: datetime) -> SheetData:
    return rendered_sheet(sheets, store_id=store.store_id(), sent=store.recent_sent(now))


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _read_back(store: Store, out: Path, sheets: list[SheetData], now: datetime) -> int:
    """Save into the store what managers typed into ``out``; the number of cells saved.

    A workbook this store did not write (a new, lost or mistyped store; the move to
    PostgreSQL) is adopted whole: every manager cell that differs from what the shops' files
    say is taken as the manager's, and the reminders it records as sent are not sent again.
    """
    back = read_manager_edits(out, sheets)
    if not back.found:
        return 0
    ours = store.store_id()
    foreign = store.written_stamp(out.resolve()) is None or (back.store_id not in (None, ours))
    if foreign and not any(s.rows for s in sheets if s.name == ALL_SHEET):
        rows = len(back.cells.get(ALL_SHEET, {}))
        if rows:
            raise EmptyStoreRefused(out, rows)
    edits = back.cells if foreign else back.edits
    built = {s.name: s for s in sheets}
    refs = _ref_index(built[ALL_SHEET]) if ALL_SHEET in built else {}
    aliases = store.aliases()
    changed = 0
    for name, got in edits.items():
        sheet = built[name]
        if name == ALL_SHEET:
            got = _by_ref(got, refs, aliases)
        if foreign:
            got = _differing(got, sheet)
        changed += store.save_manager_edits(name, got, now=now)
    if foreign:
        sent = store.adopt_sent(back.sent, now=now)
        store.note_adoption(out, cells=changed, sent=sent, now=now)
        log.warning("%s 不是由当前存储写出的（新的或更换过的存储）：已采用其中 %d 个主管单元格，%d 条已发送的提醒不再重发",
                    out, changed, sent)
    return changed


def _ref_index(sheet: SheetData) -> dict[tuple[str, str], str]:
    """(shop, complaint id) -> 记录标识, for a workbook written before records had references."""
    cols = [c.key for c in sheet.columns]
    i_shop, i_id, i_ref = cols.index("_shop"), cols.index("complaint_id"), cols.index(REF_KEY)
    out: dict[tuple[str, str], str] = {}
    for row in sheet.rows:
        out.setdefault((_key_text(row[i_shop]), _key_text(row[i_id])), row[i_ref])
    return out


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


def _differing(got: dict[RowKey, dict[str, Any]], sheet: SheetData) -> dict[RowKey, dict[str, Any]]:
    """The cells of ``got`` that say something else than the sheet built from the shops' files."""
    idx = [next(i for i, c in enumerate(sheet.columns) if c.key == k) for k in sheet.key_columns]
    pos = {c.key: i for i, c in enumerate(sheet.columns)}
    built = {tuple(_key_text(row[i]) for i in idx): row for row in sheet.rows}
    out: dict[RowKey, dict[str, Any]] = {}
    for key, cells in got.items():
        row = built.get(key)
        diff = {c: v for c, v in cells.items() if v not in (None, "")
                and (row is None or _key_text(v) != _key_text(row[pos[c]]))}
        if diff:
            out[key] = diff
    return out


_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(out: Path) -> threading.Lock:
    # `complaint-desk run` renders from the watcher thread and from the scan job: one at a
    # time per workbook, or the second would read back the manager's edits mid-replace.
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(out.resolve(), threading.Lock())


def render_merged(store: Store, out_path: str | Path, *, now: datetime) -> RenderReport:
    """Write every sheet of the merged workbook from the store, keeping what managers typed."""
    out = Path(out_path)
    with _lock_for(out), paused_gc():
        sweep_temp_files(out.parent)
        return _render(store, out, now)


def _rendered_name(out: Path) -> str:
    from ..store.codec import content_hash

    return f"rendered|{content_hash(str(out.resolve()))}"


def _same_as_written(store: Store, out: Path, key: str, now: datetime) -> dict[str, Any] | None:
    """What the last write recorded, when the workbook would come out the same now: the same
    store content, the same day, and no deadline passed or came within its warning time since.
    (逾期（小时） and the notes' "截至" time then stay as of the last write, which they say.)"""
    import json
    from datetime import timedelta

    from ..settings import DEFAULTS

    data = store._named(_rendered_name(out))
    last: dict[str, Any] | None = json.loads(data) if data else None
    if not last or last.get("key") != key:
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
    before = _stamp(out)
    # Untouched since our last write (same mtime and size): nobody typed into it, and reading
    # 100,000 rows back would cost a third of the rewrite.
    untouched = before is not None and before == store.written_stamp(out.resolve())
    key = store.content_marks(now)
    if untouched and (last := _same_as_written(store, out, key, now)) is not None:
        # A scan that changed nothing, a rescan of unchanged files: the file stays as it is
        # (no rewrite, no new modification time for managers' Excel or OneDrive to react to).
        report.unchanged = True
        report.rows, report.conflicts, report.sheets = last["rows"], last["conflicts"], list(SHEET_ORDER)
        return report
    archives: dict[int, list[dict[str, Any]]] = {}
    sheets = build_sheets(store, now, archives, out)
    if not untouched and _read_back(store, out, sheets, now):
        # A manager's new 处罚确认 (确认/免除/申诉) changes the totals on 汇总: build again so the
        # figures respect it in this rewrite, not the next one.
        key = store.content_marks(now)
        sheets = build_sheets(store, now, archives, out)
    report.manager_edits = _overlay(sheets, store)
    with atomic_write(out) as tmp:
        write_workbook(tmp, [*sheets, _record(store, sheets, now)])
        if _stamp(out) != before:
            # The manager saved while we wrote: keep their typing, render again.
            report.rerendered = True
            key = ""   # what the manager saved is in the store now: the next render writes again
            sheets = build_sheets(store, now, archives, out)
            _read_back(store, out, sheets, now)
            report.manager_edits = _overlay(sheets, store)
            write_workbook(tmp, [*sheets, _record(store, sheets, now)])
        # the temp file's stamp, not the target's after the replace: a manager saving in
        # between must never be taken for our own write (the rename keeps mtime and size)
        ours = _stamp(tmp)
    if ours is not None:
        store.save_written_stamp(out.resolve(), ours)
    # after the merged workbook: a manager's cell saved by its read-back shows in the archive too
    report.archives = [w.path for w in write_archives(store, out, archives, now) if w.rewritten]
    report.sheets = [s.name for s in sheets]
    report.rows = next((len(s.rows) for s in sheets if s.name == "全部投诉"), 0)
    report.conflicts = next((len(s.rows) for s in sheets if s.name == "冲突"), 0)
    if ours is not None:
        import json

        store.save_named(_rendered_name(out), json.dumps({"key": key, "now": now.isoformat(), "rows": report.rows,
                                                          "conflicts": report.conflicts}), now=now)
    return report
