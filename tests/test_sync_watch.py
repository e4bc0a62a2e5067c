"""The daemon with a real watchdog observer on real temp folders."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from sync.daemon import Daemon
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook


def ids(out: Path) -> set[str]:
    try:
        g = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("全部投诉").to_python()
    except Exception:  # noqa: BLE001 - not written yet
        return set()
    return {r[0] for r in g[2:]}


def wait_for(cond: Callable[[], bool], timeout: float = 20) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("poll", [False, True])
def test_save_reaches_merged_workbook(tmp_path: Path, poll: bool) -> None:
    shop = tmp_path / "SH01"
    shop.mkdir()
    rows = sample_rows(12, seed=3, now=NOW, shop="SH01")
    write_shop_workbook(shop / "投诉.xlsx", rows[:10])
    out = tmp_path / "out" / "merged.xlsx"
    daemon = Daemon([shop], out, str(tmp_path / "state.sqlite"), poll=poll, rescan_interval=3600,
                    settle_seconds=0.5, clock=lambda: NOW)
    daemon.start()
    try:
        wait_for(lambda: len(ids(out)) == 10)
        # Excel's save: write an extension-less temp, delete the original, rename the temp
        (shop / "~$投诉.xlsx").write_bytes(b"owner")
        tmp = shop / "Cedd4100"
        write_shop_workbook(tmp.with_suffix(".tmp.xlsx"), rows)
        os.replace(tmp.with_suffix(".tmp.xlsx"), tmp)
        os.unlink(shop / "投诉.xlsx")
        os.replace(tmp, shop / "投诉.xlsx")
        took = wait_for(lambda: len(ids(out)) == 12)
        assert took < 15
        assert (shop / "~$投诉.xlsx").read_bytes() == b"owner"
    finally:
        daemon.stop()


def test_supervisor_restarts_dead_observer(tmp_path: Path) -> None:
    shop = tmp_path / "SH01"
    shop.mkdir()
    write_shop_workbook(shop / "投诉.xlsx", sample_rows(3, seed=1, now=NOW, shop="SH01"))
    out = tmp_path / "merged.xlsx"
    daemon = Daemon([shop], out, str(tmp_path / "s.sqlite"), rescan_interval=3600, settle_seconds=0.3,
                    clock=lambda: NOW)
    daemon.start()
    try:
        wait_for(lambda: len(ids(out)) == 3)
        obs = daemon.watchers.observers[shop.resolve()]
        obs.stop()
        obs.join(5)
        wait_for(lambda: daemon.watchers.restarts == 1)
        write_shop_workbook(shop / "新.xlsx", sample_rows(2, seed=9, now=NOW, shop="SH02"))
        wait_for(lambda: len(ids(out)) == 5)
    finally:
        daemon.stop()
