"""A merged workbook (or an archive) a manager keeps open in Excel is written as soon as it is closed.

Excel on Windows holds an open workbook so that it can be neither replaced nor opened for
writing; a write then gives up (``WorkbookLocked``) and the store keeps everything. The daemon
looks at the workbook every few seconds (one open) and writes it once it is free, instead of
at the next shop's save or rescan (five minutes by default). Linux has no such lock: the
``excel_holds`` fixture (tests/support/excel_lock.py) refuses exactly what Windows refuses (the
rename onto the workbook, an open of it for writing) and nothing else; the folders, the
observer, the store and the workbooks are real.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from bench.data import rows_for, write_shop
from complaint_core import atomic
from complaint_core.schema import FIELDS
from sync import daemon as daemon_module
from sync.daemon import Daemon
from sync.pipeline import MergeReport
from tests.support.merged import grid, rows_of
from tests.support.waiting import wait_until
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

KEYS = [f.key for f in FIELDS]


def test_held_open_sees_what_windows_refuses_and_nothing_else(tmp_path: Path, excel_holds) -> None:
    book = tmp_path / "merged.xlsx"
    other = tmp_path / "other.xlsx"
    book.write_bytes(b"PK")
    other.write_bytes(b"PK")
    excel = excel_holds(book)
    assert not atomic.held_open(book) and not atomic.held_open(tmp_path / "missing.xlsx")
    excel.open_now = True
    assert atomic.held_open(book) and not atomic.held_open(other)
    assert book.read_bytes() == b"PK"   # looked at, not changed


def test_a_workbook_held_open_is_written_once_closed_not_at_the_next_save(tmp_path: Path, excel_holds,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon_module, "LOCKED_LOOK", 1.0)
    shop = tmp_path / "SH01"
    shop.mkdir()
    write_shop_workbook(shop / "投诉.xlsx", sample_rows(8, seed=5, now=NOW, shop="SH01"))
    out = tmp_path / "managers" / "merged.xlsx"
    excel = excel_holds(out)
    # no rescan for an hour: only the look at the workbook can bring the shop's save in
    daemon = Daemon([shop], out, str(tmp_path / "state.sqlite"), rescan_interval=3600, settle_seconds=0.3,
                    clock=lambda: NOW)
    daemon.start()
    try:
        wait_until(lambda: out.exists() and daemon.merges >= 1)
        assert len(rows_of(out, "全部投诉")) == 8
        excel.open_now = True                    # the manager opens it
        tmp = shop / "投诉.tmp.xlsx"
        write_shop_workbook(tmp, sample_rows(12, seed=5, now=NOW, shop="SH01"))
        os.replace(tmp, shop / "投诉.xlsx")       # a shop saves meanwhile
        wait_until(lambda: daemon.merges == 2 and daemon.last_report is not None and bool(daemon.last_report.write_error))
        assert "被占用" in daemon.last_report.write_error
        assert len(rows_of(out, "全部投诉")) == 8   # the old workbook, whole
        refused = excel.refused
        time.sleep(3.5)                           # looked at three times: still open, nothing tried
        assert daemon.rewrites == 0 and excel.refused == refused
        excel.open_now = False                    # the manager closes it
        wait_until(lambda: daemon.rewrites == 1)
        assert len(rows_of(out, "全部投诉")) == 12
        assert daemon.merges == 2 and not daemon.last_report.read and daemon.last_report.written == out
        assert daemon.rewrite_at is None
        time.sleep(1.5)
        assert daemon.rewrites == 1               # written once: nothing more to do
    finally:
        daemon.stop()


def test_writes_the_look_cannot_explain_back_off_to_the_rescan(tmp_path: Path) -> None:
    # a share may refuse the rename for its own reasons while the file opens fine: each failed
    # write waits twice as long as the last, never longer than the rescan
    shop = tmp_path / "SH01"
    shop.mkdir()
    daemon = Daemon([shop], tmp_path / "merged.xlsx", str(tmp_path / "state.sqlite"), rescan_interval=60)
    try:
        held = MergeReport(write_error="merged.xlsx: 文件被占用")
        gaps = []
        for _ in range(6):
            before = time.monotonic()
            daemon._plan_rewrite(held)
            assert daemon.rewrite_at is not None
            gaps.append(round(daemon.rewrite_at - before))
        assert gaps == [5, 10, 20, 40, 60, 60]
        daemon._plan_rewrite(MergeReport())       # a retry that wrote nothing: still to be written
        assert daemon.rewrite_at is not None
        daemon._plan_rewrite(MergeReport(written=tmp_path / "merged.xlsx"))
        assert daemon.rewrite_at is None
        daemon._plan_rewrite(held)
        assert round(daemon.rewrite_at - time.monotonic()) == 5   # a new hold starts again at the first gap
    finally:
        daemon.store.engine.dispose()


def _history(n_closed: int) -> list[list]:
    """One shop's rows: ``n_closed`` complaints closed in 2023 (they go to the 2023 archive under
    ``ARCHIVE_NOW``) and two still open."""
    rows = rows_for(n_closed + 2, shop="S001", seed=4)
    for n, row in enumerate(rows):
        closed = n < n_closed
        received = datetime(2023, 1 + n % 12, 1 + n, 9) if closed else datetime(2026, 9, 1, 9)
        row[KEYS.index("received_at")] = received
        row[KEYS.index("resolved_at")] = received.replace(hour=18) if closed else None
        row[KEYS.index("status")] = "已关闭" if closed else "处理中"
    return rows


ARCHIVE_NOW = datetime(2026, 9, 20, 9, 0)


def test_an_archive_held_open_is_written_once_closed(tmp_path: Path, excel_holds,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon_module, "LOCKED_LOOK", 1.0)
    shop_file = tmp_path / "shops" / "S001.xlsx"
    rows = _history(4)
    write_shop(shop_file, rows)
    out = tmp_path / "managers" / "汇总.xlsx"
    archive = out.with_name("汇总-2023.xlsx")
    daemon = Daemon([shop_file.parent], out, str(tmp_path / "state.sqlite"), rescan_interval=3600,
                    settle_seconds=0.3, clock=lambda: ARCHIVE_NOW)
    daemon.start()
    try:
        wait_until(lambda: archive.exists() and daemon.merges >= 1)
        excel = excel_holds(archive)
        excel.open_now = True                    # a manager looks something up in 2023
        rows[0][KEYS.index("description")] = "顾客补充：发票抬头有误"
        write_shop(shop_file, rows)              # the shop corrects a complaint of 2023
        wait_until(lambda: daemon.merges == 2 and daemon.last_report is not None and bool(daemon.last_report.write_error))
        assert daemon.held == archive
        described = [r[KEYS.index("description")] for r in grid(archive, "全部投诉")[2:]]
        assert "顾客补充：发票抬头有误" not in described
        refused = excel.refused
        time.sleep(2.5)                           # the merged workbook is free, the archive is not:
        assert daemon.rewrites == 0 and excel.refused == refused   # nothing tried
        excel.open_now = False
        wait_until(lambda: daemon.rewrites == 1)
        described = [r[KEYS.index("description")] for r in grid(archive, "全部投诉")[2:]]
        assert "顾客补充：发票抬头有误" in described
        assert daemon.rewrite_at is None and daemon.held is None
    finally:
        daemon.stop()
