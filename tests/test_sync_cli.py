"""``sync --once``: reasons printed, exit 1 when a source failed, 0 when all read."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from python_calamine import CalamineWorkbook

from sync.commands import sync_cmd
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook


def test_once_reports_and_exits(tmp_path: Path) -> None:
    shop = tmp_path / "SH01"
    shop.mkdir()
    write_shop_workbook(shop / "投诉.xlsx", sample_rows(5, seed=2, now=NOW, shop="SH01"))
    out = tmp_path / "merged.xlsx"
    args = ["--source", str(shop), "--out", str(out), "--once", "--now", NOW.isoformat()]
    ok = CliRunner().invoke(sync_cmd, args)
    assert ok.exit_code == 0, ok.output
    assert "已写入" in ok.output and "5 条投诉" in ok.output
    (shop / "坏.xlsx").write_bytes(b"not a workbook")
    bad = CliRunner().invoke(sync_cmd, args)
    assert bad.exit_code == 1
    assert "坏.xlsx" in bad.output and "Traceback" not in bad.output
    assert out.exists()


def test_once_needs_a_folder_and_reads_poll_sources(tmp_path: Path) -> None:
    out = tmp_path / "merged.xlsx"
    none = CliRunner().invoke(sync_cmd, ["--out", str(out), "--once"])
    assert none.exit_code == 2 and "--poll-source" in none.output
    nas = tmp_path / "nas"
    nas.mkdir()
    write_shop_workbook(nas / "投诉.xlsx", sample_rows(3, seed=7, now=NOW, shop="SH03"))
    ok = CliRunner().invoke(sync_cmd, ["--poll-source", str(nas), "--out", str(out), "--once",
                                       "--now", NOW.isoformat()])
    assert ok.exit_code == 0, ok.output
    assert "3 条投诉" in ok.output


def test_watch_polls_only_the_named_share(tmp_path: Path) -> None:
    """The real command in a child process: one local folder, one polled share, both merged."""
    local, nas = tmp_path / "SH01", tmp_path / "nas"
    local.mkdir()
    nas.mkdir()
    write_shop_workbook(local / "投诉.xlsx", sample_rows(2, seed=1, now=NOW, shop="SH01"))
    out = tmp_path / "merged.xlsx"
    exe = Path(sys.executable).with_name("complaint-desk")
    proc = subprocess.Popen([str(exe), "sync", "--source", str(local), "--poll-source", str(nas),
                             "--out", str(out), "--watch", "--now", NOW.isoformat()],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]   # one per folder, then the summary
        modes = {line.split("：")[0].removeprefix("监视 "): line for line in lines[:2]}
        assert "轮询" in modes[str(nas.resolve())] and "系统文件事件" in modes[str(local.resolve())]
        assert "2 个文件夹" in lines[2]
        write_shop_workbook(nas / "投诉.xlsx", sample_rows(3, seed=7, now=NOW, shop="SH03"))
        deadline = time.monotonic() + 20
        while merged_count(out) != 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert merged_count(out) == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, proc.stderr.read()


def merged_count(out: Path) -> int:
    try:
        return len(CalamineWorkbook.from_path(str(out)).get_sheet_by_name("全部投诉").to_python()) - 2
    except Exception:  # noqa: BLE001 - not written yet, or being replaced right now
        return -1


def test_config_poll_sources_reach_the_daemon(tmp_path: Path) -> None:
    """`[sync] poll_sources` is resolved like `sources` and watched by polling in `run`."""
    from complaint_core.errors import BadSetting
    from complaint_desk.wiring import start_watcher
    from scheduler.config import load_config

    (tmp_path / "SH01").mkdir()
    (tmp_path / "nas").mkdir()
    cfg_path = tmp_path / "desk.toml"
    base = '[store]\nurl = "state.db"\nmerged = "merged.xlsx"\n[sync]\n'
    cfg_path.write_text(base + 'sources = ["SH01"]\npoll_sources = ["nas"]\n', encoding="utf-8")
    cfg = load_config(cfg_path)
    assert cfg["sync"]["poll_sources"] == [str(tmp_path / "nas")]
    daemon = start_watcher(None, cfg)
    try:
        assert daemon.watchers.polled(tmp_path / "nas") and not daemon.watchers.polled(tmp_path / "SH01")
        assert daemon.sources == [tmp_path / "SH01", tmp_path / "nas"]
    finally:
        daemon.stop()
    for bad, key in (('poll_sources = "nas"\n', "poll_sources"), ("poll_sources = [2]\n", "poll_sources"),
                     ("rescan_minutes = 0\n", "rescan_minutes")):
        cfg_path.write_text(base + bad, encoding="utf-8")
        with pytest.raises(BadSetting, match=key):
            load_config(cfg_path)
    cfg_path.write_text('[store]\nurl = "state.db"\n[sync]\npoll_sources = ["nas"]\n', encoding="utf-8")
    with pytest.raises(BadSetting, match="merged"):
        load_config(cfg_path)
