"""A config saved by Windows Notepad loads; intervals below a minute are refused at start."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from complaint_core.errors import BadSetting
from scheduler.config import load_config

BODY = '[store]\nurl = "state.db"\nmerged = "merged.xlsx"\n[scan]\ninterval_minutes = 30\n[sync]\nempty_folder_hours = 6\n'


def test_utf8_with_bom_and_crlf_loads(tmp_path: Path) -> None:
    path = tmp_path / "complaint-desk.toml"
    path.write_bytes(b"\xef\xbb\xbf" + BODY.replace("\n", "\r\n").encode("utf-8"))
    cfg = load_config(path)
    assert cfg["scan"]["interval_minutes"] == 30 and cfg["sync"]["empty_folder_hours"] == 6
    assert cfg["store"]["url"] == str(tmp_path / "state.db")


def test_gbk_config_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes('[store]\nurl = "门店.db"\n'.encode("gbk"))
    with pytest.raises(BadSetting, match="UTF-8"):
        load_config(path)


@pytest.mark.parametrize("section, name, value", [("scan", "interval_minutes", 0), ("scan", "interval_minutes", -5),
                                                  ("mail", "send_interval_minutes", 0)])
def test_intervals_below_a_minute_are_refused(tmp_path: Path, section: str, name: str, value: int) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\nurl = "state.db"\n[{section}]\n{name} = {value}\n', encoding="utf-8")
    with pytest.raises(BadSetting, match=rf"\[{section}\] {name}") as err:
        load_config(path)
    assert str(value) in str(err.value)
    # and from the outside: `run` stops at once with that one line
    proc = subprocess.run([sys.executable, "-m", "complaint_desk", "run", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and name in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_empty_folder_hours_reaches_the_daemon(tmp_path: Path) -> None:
    from complaint_desk.wiring import start_watcher

    shop = tmp_path / "SH01"
    shop.mkdir()
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\nurl = "state.db"\nmerged = "merged.xlsx"\n[sync]\nsources = ["{shop}"]\n'
                    "empty_folder_hours = 3\n", encoding="utf-8")
    daemon = start_watcher(None, load_config(path))
    try:
        assert daemon.empty_grace == timedelta(hours=3)
    finally:
        daemon.stop()
