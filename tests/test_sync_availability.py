"""No file stops the others; a folder that cannot be seen is 不可用, never "deleted".

Real folders and workbooks, a real SQLite store, the merged workbook read back. Permission
cases run the merge in a child without the capabilities that let root read anything
(setpriv), so the permission really denies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from python_calamine import CalamineWorkbook

from complaint_core.store import open_store
from sync.api import default_state_url, merge_into, merge_once
from sync.pipeline import read_files
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook

NO_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]


def _grid(path: Path, sheet: str) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def _sources(out: Path) -> dict[str, tuple[str, str]]:
    """shop folder/file name -> (状态, 原因) on 来源."""
    return {f"{Path(r[1]).parent.name}/{Path(r[1]).name}": (r[4], r[5]) for r in _grid(out, "来源")[2:]}


def _live(out: Path) -> int:
    g = _grid(out, "全部投诉")
    at = g[1].index("来源已删除")
    return sum(1 for r in g[2:] if r[at] != "是")


def _shops(tmp: Path) -> tuple[Path, Path]:
    a, b = tmp / "SH01", tmp / "SH02"
    for i, folder in enumerate((a, b)):
        folder.mkdir()
        write_shop_workbook(folder / "投诉.xlsx", sample_rows(5, seed=i, now=NOW, shop=folder.name))
    write_shop_workbook(a / "投诉2.xlsx", sample_rows(4, seed=7, now=NOW, shop="SH01"))
    return a, b


def test_broken_files_are_named_and_keep_their_rows(tmp_path: Path) -> None:
    a, b = _shops(tmp_path)
    out = tmp_path / "merged.xlsx"
    merge_once([a, b], out, now=NOW)
    assert _live(out) == 14
    good = (a / "投诉.xlsx").read_bytes()
    (a / "投诉.xlsx").write_bytes(b"")                       # a save that never finished
    (a / "投诉2.xlsx").write_bytes(good[: len(good) // 2])   # a half-copied file
    os.mkfifo(a / "管道.xlsx")                               # never opened: it would block
    (a / "导出.csv").write_text("投诉编号,客户姓名\nA-1,张三\n", encoding="utf-8")
    write_shop_workbook(b / "新.XLSX", sample_rows(3, seed=9, now=NOW, shop="SH02"))
    report = merge_once([a, b], out, now=NOW + timedelta(minutes=5))
    assert {r.path.name for r in report.read} == {"新.XLSX"}
    assert {r.path.name for r in report.failed} == {"投诉.xlsx", "投诉2.xlsx", "管道.xlsx", "导出.csv"}
    src = _sources(out)
    assert src["SH01/投诉.xlsx"][0].startswith("读取失败") and "空文件" in src["SH01/投诉.xlsx"][1]
    assert src["SH01/投诉2.xlsx"][0].startswith("读取失败") and "zip" in src["SH01/投诉2.xlsx"][1]
    assert "管道" in src["SH01/管道.xlsx"][1] and "另存为 .xlsx" in src["SH01/导出.csv"][1]
    assert src["SH02/新.XLSX"][0] == "正常"
    assert _live(out) == 17        # the broken files' last good rows stay, the new file's are added
    # backoff per file: the next pass leaves the failed files alone and still reads a change
    write_shop_workbook(b / "投诉.xlsx", sample_rows(6, seed=1, now=NOW, shop="SH02"))
    report = merge_once([a, b], out, now=NOW + timedelta(minutes=5, seconds=1))
    assert [r.path.name for r in report.read] == ["投诉.xlsx"] and report.read[0].path.parent == b
    assert {r.outcome for r in report.failed} == {"retry_later"}


def test_a_file_gone_between_listing_and_reading_stops_nothing(tmp_path: Path) -> None:
    a, _ = _shops(tmp_path)
    store = open_store(str(tmp_path / "s.sqlite"))
    gone = a / "刚删除.xlsx"
    res = read_files(store, [gone, a / "投诉.xlsx"], known={}, now=NOW)
    assert [r.outcome for r in res] == ["unstable", "read"]
    store.engine.dispose()


def test_unreadable_file_named_and_others_merged_without_root_powers(tmp_path: Path) -> None:
    a, b = _shops(tmp_path)
    for p in (tmp_path, a, b):
        p.chmod(0o777)
    (a / "投诉.xlsx").chmod(0o000)    # a sync client or antivirus holding it
    out = tmp_path / "out" / "merged.xlsx"
    out.parent.mkdir(mode=0o777)
    proc = subprocess.run([*NO_CAPS, sys.executable, "-m", "complaint_desk", "sync", "--source", str(a),
                           "--source", str(b), "--out", str(out), "--once", "--now", NOW.isoformat()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "内部错误" not in proc.stderr
    assert f"读取失败 {a / '投诉.xlsx'}" in proc.stderr and "Permission denied" in proc.stderr
    assert _live(out) == 9
    assert _sources(out)["SH01/投诉.xlsx"][0].startswith("读取失败")


def test_missing_folder_stops_once_with_exit_2_and_rewrites_nothing(tmp_path: Path) -> None:
    a, b = _shops(tmp_path)
    out = tmp_path / "merged.xlsx"
    merge_once([a, b], out, now=NOW)
    before = out.stat().st_mtime_ns
    typo = tmp_path / "SH03"
    proc = subprocess.run([sys.executable, "-m", "complaint_desk", "sync", "--source", str(a), "--source", str(typo),
                           "--out", str(out), "--once", "--now", (NOW + timedelta(hours=1)).isoformat()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and str(typo) in proc.stderr and "不存在" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert out.stat().st_mtime_ns == before


def test_daemon_keeps_rows_of_a_folder_that_is_gone(tmp_path: Path) -> None:
    a, b = _shops(tmp_path)
    out = tmp_path / "merged.xlsx"
    store = open_store(default_state_url(out))
    merge_into(store, [a, b], out, now=NOW)
    shutil.move(str(b), str(tmp_path / "unmounted"))     # the share went away
    merge_into(store, [a, b], out, now=NOW + timedelta(days=30))
    assert _live(out) == 14
    assert _sources(out)["SH02/投诉.xlsx"][0] == "不可用" and "不存在" in _sources(out)["SH02/投诉.xlsx"][1]
    shutil.move(str(tmp_path / "unmounted"), str(b))    # back again: 正常, nothing re-added twice
    merge_into(store, [a, b], out, now=NOW + timedelta(days=31))
    assert _live(out) == 14 and all(s == "正常" for s, _ in _sources(out).values())
    store.engine.dispose()


def test_an_emptied_folder_keeps_its_rows_for_the_grace_time(tmp_path: Path) -> None:
    a, b = _shops(tmp_path)
    out = tmp_path / "merged.xlsx"
    store = open_store(default_state_url(out))
    grace = timedelta(hours=2)
    merge_into(store, [a, b], out, now=NOW, empty_grace=grace)
    (b / "投诉.xlsx").unlink()                 # an unmounted share shows an empty mount point
    report = merge_into(store, [a, b], out, now=NOW + timedelta(hours=1), empty_grace=grace)
    assert [(r.path, r.outcome) for r in report.unavailable] == [(b / "投诉.xlsx", "unavailable")]
    merge_into(store, [a, b], out, now=NOW + timedelta(hours=2, minutes=30), empty_grace=grace)
    assert _live(out) == 14                   # still within two hours of being seen empty
    assert sum(s == "不可用" for s, _ in _sources(out).values()) == 1
    merge_into(store, [a, b], out, now=NOW + timedelta(hours=3, minutes=30), empty_grace=grace)
    assert _live(out) == 9                    # empty for longer than the grace: deleted, kept as history
    assert sum(s == "文件已删除" for s, _ in _sources(out).values()) == 1
    # a file removed from a folder that still holds workbooks is deleted at once, as before
    (a / "投诉2.xlsx").unlink()
    merge_into(store, [a, b], out, now=NOW + timedelta(hours=4), empty_grace=grace)
    assert _live(out) == 5
    store.engine.dispose()


def test_daemon_does_not_spin_on_a_zero_byte_file(tmp_path: Path) -> None:
    """A 0-byte workbook is 读取失败 with its own backoff: the daemon neither re-reads it nor
    rewrites the merged workbook every few seconds."""
    import time

    from sync.daemon import Daemon

    a, b = _shops(tmp_path)
    (a / "投诉2.xlsx").write_bytes(b"")
    out = tmp_path / "merged.xlsx"
    daemon = Daemon([a, b], out, str(tmp_path / "s.sqlite"), settle_seconds=0.2, rescan_interval=3600)
    daemon.start()
    try:
        deadline = time.monotonic() + 20
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        first = out.stat().st_mtime_ns
        time.sleep(3)
        # the backoff (5 s) may end once in this window; a spin would rewrite many times
        assert daemon.merges == 1 and daemon.retries <= 1
        assert out.stat().st_mtime_ns == first
    finally:
        daemon.stop()
    src = _sources(out)
    assert src["SH01/投诉2.xlsx"][0].startswith("读取失败") and "空文件" in src["SH01/投诉2.xlsx"][1]


def test_a_folder_that_cannot_be_listed_is_not_a_deleted_one(tmp_path: Path) -> None:
    a, b = _shops(tmp_path)
    for p in (tmp_path, a, b):
        p.chmod(0o777)
    out = tmp_path / "merged.xlsx"
    cmd = [*NO_CAPS, sys.executable, "-m", "complaint_desk", "sync", "--source", str(a), "--source", str(b),
           "--out", str(out), "--once"]
    assert subprocess.run([*cmd, "--now", NOW.isoformat()], capture_output=True, timeout=120).returncode == 0
    before = out.stat().st_mtime_ns
    b.chmod(0o000)      # permission taken away on the share
    try:
        proc = subprocess.run([*cmd, "--now", (NOW + timedelta(hours=1)).isoformat()], capture_output=True,
                              text=True, timeout=120)
        # click's own check of --source says it (its usage format), exit 2, nothing rewritten
        assert proc.returncode == 2 and str(b) in proc.stderr and "Traceback" not in proc.stderr
        assert out.stat().st_mtime_ns == before
        # the daemon's pass: 不可用, rows kept
        code = ("import sys; from pathlib import Path; from datetime import datetime; "
                "from complaint_core.store import open_store; from sync.api import merge_into, default_state_url; "
                "out = Path(sys.argv[3]); s = open_store(default_state_url(out)); "
                "merge_into(s, [Path(sys.argv[1]), Path(sys.argv[2])], out, now=datetime(2026, 12, 1))")
        proc = subprocess.run([*NO_CAPS, sys.executable, "-c", code, str(a), str(b), str(out)], capture_output=True,
                              text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
        assert proc.returncode == 0, proc.stderr
    finally:
        b.chmod(0o777)
    assert _live(out) == 14
    assert _sources(out)["SH02/投诉.xlsx"][0] == "不可用" and "Permission denied" in _sources(out)["SH02/投诉.xlsx"][1]


def test_once_names_a_folder_that_went_empty(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from complaint_desk.cli import main

    a, b = _shops(tmp_path)
    out = tmp_path / "merged.xlsx"
    args = ["sync", "--source", str(a), "--source", str(b), "--out", str(out), "--once"]
    assert CliRunner().invoke(main, [*args, "--now", NOW.isoformat()]).exit_code == 0
    (b / "投诉.xlsx").unlink()
    res = CliRunner().invoke(main, [*args, "--now", (NOW + timedelta(hours=1)).isoformat()])
    assert res.exit_code == 1 and f"不可用 {b / '投诉.xlsx'}" in res.output, res.output
    assert _live(out) == 14


def test_only_a_file_written_within_the_settle_time_is_looked_at_twice(tmp_path: Path, monkeypatch) -> None:
    import os
    import time as clock

    from sync import pipeline

    a, _ = _shops(tmp_path)
    store = open_store(str(tmp_path / "s.sqlite"))
    waits: list[float] = []
    monkeypatch.setattr(pipeline.time, "sleep", waits.append)
    old = a / "投诉.xlsx"
    then = clock.time() - 60
    os.utime(old, (then, then))                   # saved a minute ago: it has held still since
    assert [r.outcome for r in read_files(store, [old], known={}, now=NOW, settle=0.2)] == ["read"]
    assert waits == []
    fresh = a / "新.xlsx"
    write_shop_workbook(fresh, sample_rows(2, seed=4, now=NOW, shop="SH01"))   # saved just now
    assert [r.outcome for r in read_files(store, [fresh], known={}, now=NOW, settle=0.2)] == ["read"]
    assert waits == [0.2]
    store.engine.dispose()
