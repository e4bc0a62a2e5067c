"""What the CLI, the demo and the scheduler call: one merge of shop folders into the workbook."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from complaint_core.errors import WorkbookLocked
from complaint_core.gcpause import paused_gc
from complaint_core.heap import give_back_big_blocks
from complaint_core.merged.render import render_merged
from complaint_core.store import Store, open_store

from .pipeline import EMPTY_FOLDER_GRACE, MergeReport, check_folders, scan

log = logging.getLogger("complaint_desk.sync")


def default_state_url(out: Path) -> str:
    """SQLite file beside the merged workbook: nothing to install."""
    return str(out.with_name(f".{out.stem}.state.sqlite"))


@paused_gc()   # reading 100 shops and writing every sheet: see complaint_core/gcpause.py
def merge_into(store: Store, sources: list[Path], out: Path, *, now: datetime,
               settle: float = 0.0,
               only: set[Path] | None = None, progress: Callable[[Path], Any] | None = None,
               render_when_idle: bool = True, empty_grace: timedelta | None = EMPTY_FOLDER_GRACE) -> MergeReport:
    """Scan ``sources`` (or ``only`` those files) into ``store`` and rewrite ``out``.

    ``render_when_idle=False`` skips the rewrite when no file was read and no new failure was
    recorded (a retry that found the file still waiting): nothing on any sheet would change.
    """
    started = time.perf_counter()
    give_back_big_blocks()   # a big shop file's blocks go back to the system once stored
    report = scan(store, sources, out=out, now=now, settle=settle, only=only, progress=progress,
                  empty_grace=empty_grace)
    changed = report.read or any(r.outcome == "failed" for r in report.failed)
    if not render_when_idle and not changed:
        report.seconds = time.perf_counter() - started
        return report
    try:
        rendered = render_merged(store, out, now=now)
        report.written = rendered.path
        report.rows = rendered.rows
        report.conflicts = rendered.conflicts
        report.reused = rendered.reused
        report.read_back = rendered.read_back
        log.info("已写入 %s: %d 条投诉（%d 个门店沿用上次写出的内容）", out, rendered.rows, rendered.reused)
    except WorkbookLocked as exc:
        # the store has everything: nothing is lost, and the daemon writes it once the workbook
        # is free (``Daemon.rewrite_at``); a single merge's next run does
        report.write_error = str(exc)
        report.held = Path(exc.path)
        log.warning("合并工作簿被占用，下次重试: %s", exc)
        report.conflicts = store.conflict_count()
    report.seconds = time.perf_counter() - started
    return report


def merge_once(sources: list[Path], out: Path, *, state_url: str | None = None, now: datetime,
               poll: bool = False,
               progress: Callable[[Path], Any] | None = None) -> MergeReport:
    """Read every changed shop workbook under ``sources`` and rewrite ``out``.

    ``poll`` only matters for the daemon (how folders are watched); a single merge rescans.
    """
    out = Path(out)
    check_folders([Path(s) for s in sources])   # a typo or an unmounted share: one line, nothing rewritten
    store = open_store(state_url or default_state_url(out))
    try:
        return merge_into(store, [Path(s) for s in sources], out, now=now,
                          progress=progress)
    finally:
        store.engine.dispose()
