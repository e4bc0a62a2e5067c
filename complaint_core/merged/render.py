"""Render the merged workbook from the store, keeping what managers typed into it.

Order of work for one rewrite: read back the manager-owned cells of the current file, save
them in the store, overlay them on the new rows, write a temp file, and if the manager saved
the target meanwhile, read back again and re-render before the atomic replace.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..atomic import atomic_write, sweep_temp_files
from ..gcpause import paused_gc
from ..store import Store
from ..store.db import View
from .model import SHEET_ORDER, SheetData
from .readback import _key_text, read_manager_edits, rendered_sheet
from .report import case_book_sheet, overdue_sheet, penalty_sheet, summary_sheet
from .sheets import all_sheet, conflict_sheet, findings_sheet, sources_sheet
from .xlsx import write_workbook


@dataclass
class RenderReport:
    path: Path
    rows: int = 0
    sheets: list[str] = field(default_factory=list)
    manager_edits: int = 0
    rerendered: bool = False
    conflicts: int = 0


def build_sheets(store: Store, now: datetime) -> list[SheetData]:
    """Every sheet of the contract, from the store and the clock alone."""
    # one transaction: every sheet shows the same moment, even while a scan writes penalties
    with store.engine.begin() as conn:
        view = View(store, conn)
        records = view.current_records()
        sheets = [
            summary_sheet(view, now),
            all_sheet(records),
            overdue_sheet(view, now),
            penalty_sheet(view, now),
            case_book_sheet(view, now),
            conflict_sheet(view.conflicts()),
            findings_sheet(view.findings()),
            sources_sheet(view.sources()),
        ]
    assert tuple(s.name for s in sheets) == SHEET_ORDER
    return sheets


def _overlay(sheets: list[SheetData], store: Any) -> int:
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


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _read_back(store: Any, out: Path, sheets: list[SheetData], now: datetime) -> int:
    changed = 0
    for name, edits in read_manager_edits(out, sheets).items():
        changed += store.save_manager_edits(name, edits, now=now)
    return changed


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


def _render(store: Store, out: Path, now: datetime) -> RenderReport:
    report = RenderReport(out)
    sheets = build_sheets(store, now)
    before = _stamp(out)
    # Untouched since our last write (same mtime and size): nobody typed into it, and reading
    # 100,000 rows back would cost a third of the rewrite.
    untouched = before is not None and before == store.written_stamp(out.resolve())
    if not untouched and _read_back(store, out, sheets, now):
        # A manager's new 处罚确认 (确认/免除/申诉) changes the totals on 汇总: build again so the
        # figures respect it in this rewrite, not the next one.
        sheets = build_sheets(store, now)
    report.manager_edits = _overlay(sheets, store)
    with atomic_write(out) as tmp:
        write_workbook(tmp, [*sheets, rendered_sheet(sheets)])
        if _stamp(out) != before:
            # The manager saved while we wrote: keep their typing, render again.
            report.rerendered = True
            sheets = build_sheets(store, now)
            _read_back(store, out, sheets, now)
            report.manager_edits = _overlay(sheets, store)
            write_workbook(tmp, [*sheets, rendered_sheet(sheets)])
        # the temp file's stamp, not the target's after the replace: a manager saving in
        # between must never be taken for our own write (the rename keeps mtime and size)
        ours = _stamp(tmp)
    if ours is not None:
        store.save_written_stamp(out.resolve(), ours)
    report.sheets = [s.name for s in sheets]
    report.rows = next((len(s.rows) for s in sheets if s.name == "全部投诉"), 0)
    report.conflicts = next((len(s.rows) for s in sheets if s.name == "冲突"), 0)
    return report
