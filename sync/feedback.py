"""Write each shop's feedback workbook: ``<shop folder>/_反馈/<workbook name>_反馈.xlsx``.

For shops without the add-in (WPS, LibreOffice, a Mac, a phone): their file's problems and
their open complaints' next steps, where they already look. The shop's own workbook is only
read (in a killable child, like the merge), never written. Each feedback file is written
atomically and only when its content changed: the digest of the last content written is
kept beside it (``.<name>.digest``), so an unchanged shop costs one small file read and no
rewrite, also across restarts of the daemon and between ``sync --once`` runs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import xlsxwriter

from complaint_core.atomic import atomic_write
from complaint_core.errors import ComplaintDeskError, UnreadableWorkbook
from complaint_core.feedback import FEEDBACK_DIR, FeedbackBook, build_feedback, feedback_name
from complaint_core.isolate import read_workbook_isolated
from complaint_core.model import ComplaintTable
from complaint_core.playbook import DEFAULT_PLAYBOOK, Playbook
from complaint_core.settings import DEFAULTS
from complaint_core.validate import validate_table

from .files import is_conflict_copy, list_sources, path_text

log = logging.getLogger("complaint_desk.sync")

TICK_SECONDS = 60.0   # deadlines change state by the minute at most: look again once a minute


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def feedback_path(source: Path) -> Path:
    return source.parent / FEEDBACK_DIR / feedback_name(source.name)


def _digest_path(target: Path) -> Path:
    # a dot name: list_sources and the watcher ignore it, and shops rarely see it
    return target.with_name(f".{target.name}.digest")


def write_book(book: FeedbackBook, target: Path, *, now: datetime) -> None:
    """The workbook, atomically: wrapped text, frozen header, widths that fit a phone's screen."""
    with atomic_write(target) as tmp:
        # customer text is data: never a formula, a URL or a number guessed from text
        wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False,
                                            "strings_to_numbers": False})
        head = wb.add_format({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDEBF7",
                              "border": 1})
        cell = wb.add_format({"text_wrap": True, "valign": "top", "border": 1})
        for sheet in book.sheets:
            ws = wb.add_worksheet(sheet.name)
            for c, (title, width) in enumerate(zip(sheet.header, sheet.widths, strict=True)):
                ws.write_string(0, c, title, head)
                ws.set_column(c, c, width)
            for r, row in enumerate(sheet.rows, start=1):
                for c, value in enumerate(row):
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        ws.write_number(r, c, value, cell)
                    else:
                        ws.write_string(r, c, "" if value is None else str(value), cell)
            ws.freeze_panes(1, 0)
            ws.fit_to_pages(1, 0)
            ws.protect("", {"select_locked_cells": True, "select_unlocked_cells": True,
                            "format_columns": True, "format_rows": True})   # read only: edits belong in the shop's file
        wb.set_properties({"title": "投诉台账 反馈", "comments": f"更新于 {now:%Y-%m-%d %H:%M}"})
        wb.close()


@dataclass
class FeedbackReport:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class _Read:
    stamp: tuple[int, int]
    table: ComplaintTable | None
    playbook: Playbook
    error: str | None
    built_at: datetime | None = None      # ``now`` of the last build from this read
    written: tuple[int, int] | None = None  # the feedback file's (size, mtime_ns) as we left it
    next_change: datetime | None = None   # until then the clock changes nothing in it


class FeedbackWriter:
    """Keeps each shop file's parsed table between passes (re-read only when size or mtime
    changes), so a pass that only advances the clock parses nothing."""

    def __init__(self, *, timeout: float = 20.0) -> None:
        self.timeout = timeout
        self._cache: dict[Path, _Read] = {}
        self._lock = threading.Lock()
        self.last_pass = 0.0
        self.tick = TICK_SECONDS

    def due(self) -> bool:
        return time.monotonic() - self.last_pass >= self.tick

    def run(self, folders: list[Path], *, now: datetime, out: Path | None = None) -> FeedbackReport:
        """One pass over every shop workbook under ``folders``."""
        report = FeedbackReport()
        with self._lock:
            self.last_pass = time.monotonic()
            # a name that is not UTF-8 is not merged (来源 says why): no feedback for it either
            sources = [p for p in list_sources(folders, out=out) if not is_conflict_copy(p) and path_text(p) == str(p)]
            for gone in set(self._cache) - set(sources):
                del self._cache[gone]
            for source in sources:
                try:
                    target = self.one(source, now=now)
                except (OSError, ComplaintDeskError) as exc:
                    # e.g. a read-only share: the merge goes on; the next pass tries again
                    log.warning("反馈文件未写入 %s: %s", source, exc)
                    report.failed.append((source, str(exc)))
                    continue
                (report.written if target else report.unchanged).append(target or feedback_path(source))
        return report

    def _read(self, source: Path) -> _Read | None:
        try:
            st = source.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        cached = self._cache.get(source)
        if cached is not None and cached.stamp == stamp:
            return cached
        try:
            table = read_workbook_isolated(source, timeout=self.timeout)
            got = _Read(stamp, table, _playbook(source), None)
        except UnreadableWorkbook as exc:
            got = _Read(stamp, None, DEFAULT_PLAYBOOK, exc.reason)
        self._cache[source] = got
        return got

    def one(self, source: Path, *, now: datetime) -> Path | None:
        """Bring one shop file's feedback up to date; the path when it was (re)written."""
        got = self._read(source)
        if got is None:
            return None
        target = feedback_path(source)
        if got.built_at is not None and got.built_at <= now and (got.next_change is None or now < got.next_change) \
                and _stamp(target) == got.written:
            return None   # same file, and no deadline or time has changed state since the last build
        if got.table is None:
            book = build_feedback(source.name, [], [], now=now, error=got.error)
        else:
            table = got.table
            records = [{**r.values, "source_row": r.row} for r in table.rows]
            book = build_feedback(source.name, records, validate_table(table, now=now),
                                  settings=table.settings or DEFAULTS, playbook=got.playbook, now=now)
        marker = _digest_path(target)
        with contextlib.suppress(OSError, ValueError):
            # the digest of what we wrote, and the file as we left it: a copy someone edited or
            # replaced is written again even when our content did not change
            digest, size, mtime = marker.read_text(encoding="ascii").split()
            if digest == book.digest and _stamp(target) == (int(size), int(mtime)):
                got.built_at, got.next_change, got.written = now, book.next_change, _stamp(target)
                return None
        write_book(book, target, now=now)
        written = _stamp(target)
        if written is None:   # moved or deleted the moment after we wrote it: run() reports it
            raise FileNotFoundError(f"{target}: 反馈文件写入后立即消失 (gone right after it was written)")
        with atomic_write(marker) as tmp:
            tmp.write_text(f"{book.digest} {written[0]} {written[1]}", encoding="ascii")
        # only once written: a failed write is tried again on the next pass
        got.built_at, got.next_change, got.written = now, book.next_change, written
        log.info("已写入反馈 %s: 待办 %d 件，问题 %d 个", target, book.open_count, book.findings_count)
        return target


def _playbook(source: Path) -> Playbook:
    """The shop's 处理手册, read only after the killable child parsed the same file without
    harm; a sheet the shop broke falls back to the default advice rather than no feedback."""
    from complaint_core.reader import read_playbook

    try:
        return read_playbook(source)
    except ComplaintDeskError as exc:
        log.warning("处理手册无法读取，反馈用默认建议 %s: %s", source, exc)
        return DEFAULT_PLAYBOOK


def write_feedback(folders: list[Path], *, now: datetime, out: Path | None = None) -> FeedbackReport:
    """``sync --once --feedback``: one pass, nothing kept."""
    return FeedbackWriter().run(folders, now=now, out=out)


def safe_pass(writer: FeedbackWriter | None, folders: list[Path], *, now: datetime,
              out: Path | None) -> FeedbackReport | None:
    """The daemon's hook: a feedback pass that never stops the merging."""
    if writer is None:
        return None
    try:
        return writer.run(folders, now=now, out=out)
    except Exception:  # noqa: BLE001 - feedback is a courtesy; the merge must go on
        log.exception("反馈文件写入失败，下次重试")
        return None
