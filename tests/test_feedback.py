"""The per-shop feedback workbook: the pure builder, ``sync --once --feedback`` and the daemon,
on real shop folders, opened in LibreOffice headless."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook

from complaint_core.errors import BadSetting
from complaint_core.feedback import OPEN_SHEET, build_feedback, feedback_name
from complaint_core.reader import read_workbook
from complaint_core.validate import validate_table
from complaint_desk.cli import main
from complaint_desk.demo_data import write_rows
from sync.daemon import Daemon
from sync.feedback import FeedbackWriter, feedback_path
from sync.files import list_sources
from tests.support.libreoffice import libreoffice_opens
from tests.test_sync_watch import wait_for

NOW = datetime(2026, 11, 20, 10, 0)


def complaint(cid: str, received: datetime, **kw) -> dict:
    row = {"complaint_id": cid, "shop": "SH01", "received_at": received, "received_by": "王芳", "channel": "电话",
           "customer_name": "张伟", "customer_phone": "13800138000", "category": "服务态度",
           "description": "=店员态度差，等了很久", "status": "处理中", "validity": "待判定"}
    row.update(kw)
    return row


def shop_rows() -> list[dict]:
    return [
        complaint("SH01-B", NOW - timedelta(hours=3)),                       # contact overdue
        complaint("SH01-A", NOW - timedelta(minutes=30)),                    # on time
        complaint("SH01-D", NOW - timedelta(days=5), status="已关闭", resolved_at=NOW - timedelta(days=4),
                  followup_at=NOW - timedelta(days=3), first_contact_at=NOW - timedelta(days=5),
                  feedback_at=NOW - timedelta(days=4)),                      # closed: not listed
        complaint("SH01-C", NOW - timedelta(minutes=90), customer_phone="138-0013"),  # due soon, bad phone
        complaint("SH01-N", NOW - timedelta(hours=1), validity="不成立", status="不成立",
                  resolution_plan="已向客户说明政策"),                        # judged not valid: nothing due
    ]


def make_shop(tmp_path: Path, rows: list[dict] | None = None) -> Path:
    folder = tmp_path / "shops" / "SH01"
    folder.mkdir(parents=True, exist_ok=True)
    return write_rows(folder / "投诉-SH01.xlsx", rows if rows is not None else shop_rows(), shop="SH01")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sheet(path: Path, name: str) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(name).to_python()


def test_builder_lists_open_complaints_newest_first_with_states(tmp_path):
    table = read_workbook(make_shop(tmp_path))
    records = [{**r.values, "source_row": r.row} for r in table.rows]
    findings = validate_table(table, now=NOW)
    book = build_feedback("投诉-SH01.xlsx", records, findings, settings=table.settings, now=NOW)
    summary, opened, listed = book.sheets
    assert [r[0] for r in opened.rows] == ["SH01-A", "SH01-C", "SH01-B"]
    contact = {r[0]: r[5] for r in opened.rows}
    assert contact == {"SH01-A": "11-20 11:30\n未到期 on time", "SH01-C": "11-20 10:30\n即将到期 due soon",
                       "SH01-B": "11-20 09:00\n已逾期 overdue"}
    assert all("前向客户反馈" in r[8] for r in opened.rows) and {r[9] for r in opened.rows} == {2, 3, 5}
    assert listed.rows[0][:4] == ("投诉登记", "G5", "联系电话", "错误 error") and "138-0013" in listed.rows[0][4]
    assert "已逾期 1 项，即将到期 1 项" in dict(summary.rows)["待办投诉 Open"]
    # findings in the store's tuple form give the same book
    as_tuples = [(f.sheet, f.row, f.cell, f.field, f.severity, f.code, f.message) for f in findings]
    assert build_feedback("投诉-SH01.xlsx", records, as_tuples, settings=table.settings, now=NOW).digest == book.digest


def test_digest_moves_only_with_the_data_or_a_state(tmp_path):
    table = read_workbook(make_shop(tmp_path))
    records = [{**r.values, "source_row": r.row} for r in table.rows]

    def digest(now, recs=records):
        return build_feedback("x.xlsx", recs, validate_table(table, now=now), now=now).digest

    assert digest(NOW) == digest(NOW + timedelta(minutes=1))          # same states a minute later
    assert digest(NOW) != digest(NOW + timedelta(minutes=31))         # SH01-C's contact is now overdue
    changed = [dict(r) for r in records]
    changed[0]["description"] = "客户又来电"
    assert digest(NOW) != digest(NOW, changed)


def test_sync_once_feedback_end_to_end(tmp_path):
    shop = make_shop(tmp_path)
    before = sha(shop)
    out = tmp_path / "merged.xlsx"
    args = ["sync", "--source", str(shop.parent.parent), "--out", str(out), "--once", "--feedback"]
    result = CliRunner().invoke(main, [*args, "--now", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    target = shop.parent / "_反馈" / "投诉-SH01_反馈.xlsx"
    assert feedback_path(shop) == target and target.name == feedback_name(shop.name)
    assert "更新 1 个" in result.output

    # a real spreadsheet program opens it; the customer's "=..." text stays text
    csv = libreoffice_opens(target, sheet=2)
    assert "SH01-B" in csv and "已逾期 overdue" in csv and "=店员态度差" in csv
    assert sheet(target, "校验问题 Findings")[1][1] == "G5"
    wb = load_workbook(target)
    opened = wb[OPEN_SHEET]
    assert wb.sheetnames[0] == "概要 Summary" and opened.freeze_panes == "A2"
    assert opened["I2"].alignment.wrap_text and opened.protection.sheet
    assert opened["D2"].data_type == "s"

    # the shop's own workbook is never touched, and the feedback file is never read back
    assert sha(shop) == before
    assert list_sources([shop.parent.parent]) == [shop]
    sources = [r[0] for r in sheet(out, "来源")[1:]]
    assert not any("_反馈" in str(s) for s in sources)

    # nothing changed: not rewritten
    stamp = target.stat().st_mtime_ns
    again = CliRunner().invoke(main, [*args, "--now", (NOW + timedelta(minutes=1)).isoformat()])
    assert "更新 0 个，未变 1 个" in again.output and target.stat().st_mtime_ns == stamp
    # the clock turns SH01-C overdue: rewritten
    later = CliRunner().invoke(main, [*args, "--now", (NOW + timedelta(minutes=31)).isoformat()])
    assert "更新 1 个" in later.output
    assert sum("已逾期" in (c or "") for r in sheet(target, OPEN_SHEET)[1:] for c in r[5:8]) == 2
    # the shop adds a complaint: rewritten with it on top
    make_shop(tmp_path, [*shop_rows(), complaint("SH01-E", NOW + timedelta(minutes=20))])
    CliRunner().invoke(main, [*args, "--now", (NOW + timedelta(minutes=31)).isoformat()])
    assert sheet(target, OPEN_SHEET)[1][0] == "SH01-E"
    assert not list((shop.parent / "_反馈").glob(".~cd-tmp-*"))


def test_an_unreadable_shop_file_is_told_so(tmp_path):
    folder = tmp_path / "SH02"
    folder.mkdir()
    (folder / "坏了.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    report = FeedbackWriter().run([folder], now=NOW)
    target = folder / "_反馈" / "坏了_反馈.xlsx"
    assert report.written == [target]
    rows = sheet(target, "校验问题 Findings")
    assert "文件无法读取" in rows[1][4]


def test_daemon_writes_feedback_on_merge_and_on_the_clock(tmp_path):
    shop = make_shop(tmp_path)
    clock = [NOW]
    out = tmp_path / "out" / "merged.xlsx"
    daemon = Daemon([shop.parent], out, str(tmp_path / "state.sqlite"), rescan_interval=3600,
                    settle_seconds=0.3, clock=lambda: clock[0], feedback=True)
    daemon.feedback.tick = 0.3
    target = feedback_path(shop)
    daemon.start()
    try:
        wait_for(target.exists)
        # creating _反馈 touches the watched folder itself once (a folder hint: one cheap rescan)
        time.sleep(1.0)
        first = target.stat().st_mtime_ns
        merges = daemon.merges
        clock[0] = NOW + timedelta(minutes=31)       # no file changed; a deadline turned overdue
        wait_for(lambda: target.stat().st_mtime_ns != first)
        assert sum("已逾期" in (c or "") for r in sheet(target, OPEN_SHEET)[1:] for c in r[5:8]) == 2
        time.sleep(1.0)
        # rewriting the feedback file is not a shop's save: it starts no merge
        assert daemon.merges == merges
        make_shop(tmp_path, [*shop_rows(), complaint("SH01-E", NOW + timedelta(minutes=20))])
        wait_for(lambda: sheet(target, OPEN_SHEET)[1][0] == "SH01-E")
    finally:
        daemon.stop()


def test_config_key_turns_feedback_on_in_the_service(tmp_path):
    from complaint_desk.wiring import start_watcher
    from scheduler.config import load_config

    shop = make_shop(tmp_path)
    cfg_path = tmp_path / "desk.toml"
    cfg_path.write_text(f'[store]\nurl = "state.sqlite"\nmerged = "merged.xlsx"\n'
                        f'[sync]\nsources = ["{shop.parent.as_posix()}"]\nfeedback = true\n', encoding="utf-8")
    cfg = load_config(cfg_path)
    assert cfg["sync"]["feedback"] is True
    daemon = start_watcher(None, cfg)
    try:
        wait_for(feedback_path(shop).exists)
    finally:
        daemon.stop()
    cfg_path.write_text(cfg_path.read_text(encoding="utf-8").replace("feedback = true", "feedback = 1"),
                        encoding="utf-8")
    with pytest.raises(BadSetting, match="feedback"):
        load_config(cfg_path)



def test_a_tick_with_nothing_due_reads_and_checks_nothing(tmp_path, monkeypatch):
    import sync.feedback as fb

    shop = make_shop(tmp_path)
    checked = []
    real = fb.validate_table
    monkeypatch.setattr(fb, "validate_table", lambda table, **kw: checked.append(1) or real(table, **kw))
    writer = FeedbackWriter()
    assert writer.run([shop.parent], now=NOW).written == [feedback_path(shop)]
    # SH01-C's contact turns overdue just after 10:30; before that nothing is rebuilt
    assert writer.run([shop.parent], now=NOW + timedelta(minutes=29)).unchanged and len(checked) == 1
    assert writer.run([shop.parent], now=NOW + timedelta(minutes=31)).written and len(checked) == 2


def test_an_edited_feedback_file_is_put_back(tmp_path):
    shop = make_shop(tmp_path)
    writer = FeedbackWriter()
    writer.run([shop.parent], now=NOW)
    target = feedback_path(shop)
    wb = load_workbook(target)
    wb[OPEN_SHEET]["A2"] = "店员改的"
    wb.save(target)
    # a fresh writer too (sync --once the next morning): the digest file remembers our copy
    assert FeedbackWriter().run([shop.parent], now=NOW).written == [target]
    assert sheet(target, OPEN_SHEET)[1][0] == "SH01-A"
    # the first writer sees a file it did not leave that way, checks, and finds it right again
    assert writer.run([shop.parent], now=NOW).unchanged == [target]
