"""A manager's save of the merged workbook is read back when it happens, not at the next write.

Reading 100,000 complaints' manager cells back takes seconds; done at the manager's save, the
next shop's save is merged without it (issue 17: the cost follows the change that caused it).
Real workbooks, a real store, a real watchdog observer for the daemon.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

from complaint_core.merged.render import read_back, render_merged, workbook_stamp
from complaint_core.store import open_store
from sync.api import merge_into
from sync.daemon import Daemon
from tests.support.merged import rows_of, type_into
from tests.support.waiting import wait_until
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

APPROVAL = "主管批示"


def _shop(tmp: Path, n: int = 8, seed: int = 5) -> Path:
    folder = tmp / "SH01"
    folder.mkdir(exist_ok=True)
    write_shop_workbook(folder / "投诉.xlsx", sample_rows(n, seed=seed, now=NOW, shop="SH01"))
    return folder


def _merged(tmp_path: Path):
    """A store and the merged workbook it wrote of one shop's file."""
    store = open_store(tmp_path / "s.sqlite")
    out = tmp_path / "m.xlsx"
    merge_into(store, [_shop(tmp_path)], out, now=NOW)
    return store, out


def _approvals(store) -> dict[str, str]:
    """记录标识 -> 主管批示 as the store keeps it (a cleared one is not there)."""
    return {key[0]: cells["manager_approval"] for key, cells in store.manager_edits("全部投诉").items()
            if cells.get("manager_approval")}


def _shown(out: Path) -> dict[str, str]:
    """投诉编号 -> 主管批示 as the merged workbook shows it."""
    return {r["投诉编号"]: r[APPROVAL] for r in rows_of(out, "全部投诉") if r[APPROVAL]}


def _first_id(out: Path) -> str:
    return rows_of(out, "全部投诉")[0]["投诉编号"]


def _type(out: Path, cid: str, text: str) -> None:
    assert type_into(out, "全部投诉", lambda r: r["投诉编号"] == cid, APPROVAL, text) == 1


def test_a_managers_save_is_stored_at_once_and_the_next_write_does_not_read_it(tmp_path: Path) -> None:
    store, out = _merged(tmp_path)
    assert read_back(store, out, now=NOW) is None           # as we wrote it: nothing to read
    cid = _first_id(out)
    _type(out, cid, "经理：先电话致歉")
    saved = workbook_stamp(out)

    assert read_back(store, out, now=NOW) == 1
    assert list(_approvals(store).values()) == ["经理：先电话致歉"]
    assert workbook_stamp(out) == saved                      # the manager's file is left as it is
    assert read_back(store, out, now=NOW) is None            # read once

    # the next write (a new day) lays the stored cell and does not read the file again
    report = render_merged(store, out, now=NOW + timedelta(days=1))
    assert not report.read_back and not report.unchanged
    assert _shown(out) == {cid: "经理：先电话致歉"}


def test_a_save_after_the_read_back_is_read_by_the_next_write(tmp_path: Path) -> None:
    store, out = _merged(tmp_path)
    cid = _first_id(out)
    _type(out, cid, "第一次批示")
    assert read_back(store, out, now=NOW) == 1
    time.sleep(0.01)
    _type(out, cid, "改为：上门致歉")    # saved again before any write

    report = render_merged(store, out, now=NOW + timedelta(days=1))
    assert report.read_back
    assert _shown(out) == {cid: "改为：上门致歉"}
    assert list(_approvals(store).values()) == ["改为：上门致歉"]


def test_a_cell_put_back_between_two_read_backs_is_put_back(tmp_path: Path) -> None:
    # the second save is compared with the first one read, not with our write: a cell cleared,
    # or put back to what an earlier manager's cell said, is the manager's too
    store, out = _merged(tmp_path)
    first, second = [r["投诉编号"] for r in rows_of(out, "全部投诉")[:2]]
    _type(out, second, "早先的批示")
    render_merged(store, out, now=NOW + timedelta(days=1))       # written with it
    assert _shown(out) == {second: "早先的批示"}
    _type(out, first, "临时批示")
    _type(out, second, "改过一次")
    assert read_back(store, out, now=NOW) == 2
    time.sleep(0.01)
    _type(out, first, "")
    _type(out, second, "早先的批示")
    assert read_back(store, out, now=NOW) == 2
    assert sorted(_approvals(store).values()) == ["早先的批示"]

    report = render_merged(store, out, now=NOW + timedelta(days=2))
    assert not report.read_back
    assert _shown(out) == {second: "早先的批示"}


def test_a_save_while_reading_back_is_read_by_the_next_write(tmp_path: Path, monkeypatch) -> None:
    from complaint_core.merged import render

    store, out = _merged(tmp_path)
    cid = _first_id(out)
    _type(out, cid, "读取时的批示")
    newer = tmp_path / "newer.xlsx"
    shutil.copy2(out, newer)
    _type(newer, cid, "")   # the manager clears it again…
    real = render.changed_cells   # how the store reads its own workbook back

    def read_while_the_manager_saves(*args, **kwargs):
        got = real(*args, **kwargs)
        os.replace(newer, out)   # …and saves while the daemon reads the first save
        return got

    monkeypatch.setattr(render, "changed_cells", read_while_the_manager_saves)
    assert read_back(store, out, now=NOW) == 1
    monkeypatch.setattr(render, "changed_cells", real)

    report = render_merged(store, out, now=NOW + timedelta(days=1))
    assert report.read_back
    assert _shown(out) == {} and _approvals(store) == {}


def test_an_older_save_put_back_after_a_write_is_read_again(tmp_path: Path) -> None:
    # a copy keeps its time: the stamp the read-back saw comes back after our own write, and
    # must not be taken for "read already"
    store, out = _merged(tmp_path)
    cid = _first_id(out)
    _type(out, cid, "备份里的批示")
    assert read_back(store, out, now=NOW) == 1
    backup = tmp_path / "backup.xlsx"
    shutil.copy2(out, backup)
    _type(out, cid, "")                 # the manager clears it, and it is written without it
    render_merged(store, out, now=NOW + timedelta(days=1))
    assert _shown(out) == {}
    shutil.copy2(backup, out)           # …then puts the backup back (same time and size)
    assert workbook_stamp(out) == workbook_stamp(backup)

    report = render_merged(store, out, now=NOW + timedelta(days=2))
    assert report.read_back
    assert _shown(out) == {cid: "备份里的批示"}


def test_a_workbook_another_store_wrote_is_left_to_the_next_write(tmp_path: Path) -> None:
    folder = _shop(tmp_path)
    out = tmp_path / "m.xlsx"
    first = open_store(tmp_path / "first.sqlite")
    merge_into(first, [folder], out, now=NOW)
    cid = _first_id(out)
    _type(out, cid, "旧存储时的批示")
    second = open_store(tmp_path / "second.sqlite")
    merge_into(second, [folder], tmp_path / "elsewhere.xlsx", now=NOW)   # has records, never wrote out

    assert read_back(second, out, now=NOW) is None           # not its workbook: nothing adopted here
    assert _approvals(second) == {}
    report = render_merged(second, out, now=NOW + timedelta(days=1))   # the write adopts it whole
    assert report.read_back
    assert _shown(out) == {cid: "旧存储时的批示"}


def test_the_daemon_stores_a_managers_save_without_rewriting_the_workbook(tmp_path: Path) -> None:
    shop = _shop(tmp_path, 10)
    out = tmp_path / "managers" / "merged.xlsx"    # a folder no shop saves into: not watched
    daemon = Daemon([shop], out, str(tmp_path / "state.sqlite"), rescan_interval=3600, settle_seconds=0.5,
                    clock=lambda: NOW)
    daemon.start()
    try:
        wait_until(lambda: out.exists() and daemon.merges >= 1)
        wait_until(lambda: daemon._out_done is not None)   # its own write looked at, nothing read
        assert daemon.read_backs == 0
        cid = _first_id(out)
        _type(out, cid, "经理：今日")        # saves a second apart (AutoSave while typing): read
        time.sleep(1)                        # once, when they stop
        _type(out, cid, "经理：今日回访")
        saved = workbook_stamp(out)
        wait_until(lambda: daemon.read_backs == 1)
        assert list(_approvals(daemon.store).values()) == ["经理：今日回访"]
        time.sleep(1.5)
        assert daemon.read_backs == 1
        assert workbook_stamp(out) == saved and daemon.merges == 1   # the manager's file: not rewritten

        # a shop's save: merged without reading the workbook back, the manager's cell kept
        rows = sample_rows(12, seed=5, now=NOW, shop="SH01")
        tmp = shop / "投诉.tmp.xlsx"
        write_shop_workbook(tmp, rows)
        os.replace(tmp, shop / "投诉.xlsx")
        wait_until(lambda: daemon.merges == 2 and len(rows_of(out, "全部投诉")) == 12)
        assert _shown(out) == {cid: "经理：今日回访"}
        assert daemon.read_backs == 1 and daemon.last_report is not None and not daemon.last_report.read_back
    finally:
        daemon.stop()
