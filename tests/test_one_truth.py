"""Issue 12, "One truth": one test per reproduced failure, through the real CLI on real files.

Each test failed on main before the store became the one truth (see CHANGELOG 0.3).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
from click.testing import CliRunner

from complaint_core.rules_book import Person, Rules, build_rules_template
from complaint_core.schema import SHEET_SETTINGS
from complaint_core.store import open_store
from complaint_desk.cli import main
from tests.support.merged import grid, rows_of, type_into
from tests.support.workbooks import write_shop_workbook

NOW = datetime(2026, 11, 20, 10, 0)      # a Friday


def cli(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def row(i: int, **over: Any) -> dict[str, Any]:
    base = {"complaint_id": f"SH01-20261110-{i:03d}", "shop": "SH01",
            "received_at": datetime(2026, 11, 10, 9, 0) + timedelta(hours=i), "received_by": "李娜",
            "channel": "电话", "customer_name": f"客户{i}", "customer_phone": f"1380013{i:04d}",
            "subject": "洗衣机", "category": "商品质量", "description": f"第{i}台洗衣机漏水",
            "customer_request": "维修更换", "customer_mood": "不满", "severity": "一般", "validity": "成立",
            "responsible_dept": "售后部", "responsible_person": "张强", "root_cause": "企业原因",
            "status": "处理中", "first_contact_at": datetime(2026, 11, 10, 9, 30) + timedelta(hours=i)}
    base.update(over)
    return base


def shop_file(folder: Path, rows: list[dict[str, Any]], *, shop: str = "SH01", name: str = "投诉.xlsx",
              settings: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = write_shop_workbook(folder / name, rows, shop_code=shop)
    if settings:
        wb = openpyxl.load_workbook(path)
        for label, value in settings.items():
            wb[SHEET_SETTINGS].append([label, value])
        wb.save(path)
    return path


def rules_file(path: Path) -> Path:
    build_rules_template(path, Rules(staff=(Person("张强", "售后部", "赵主管", "zq@example.com"),
                                            Person("赵主管", "售后部", "", "zhao@example.com"))))
    return path


def sync(folder: Path, out: Path, state: Path, now: str = "2026-11-20T10:00", *more: Any) -> Any:
    return cli("sync", "--source", folder, "--out", out, "--state", state, "--once", "--now", now, *more)


# 1 ------------------------------------------------------------------------------------------
def test_a_plain_sync_writes_every_sheet_and_keeps_a_waiver_typed_since_the_scan(tmp_path: Path) -> None:
    shops, out, state = tmp_path / "SH01", tmp_path / "汇总.xlsx", tmp_path / "state.db"
    shop_file(shops, [row(1, first_contact_at=None), row(2)])
    assert sync(shops, out, state).exit_code == 0
    r = cli("scan", "--state", state, "--out", out, "--now", "2026-11-20T10:00", "--rules",
            rules_file(tmp_path / "rules.xlsx"))
    assert r.exit_code == 0, r.output
    penalties = rows_of(out, "处罚", key="事件编号")
    assert penalties
    waived = penalties[0]["事件编号"]
    type_into(out, "处罚", lambda v: v["事件编号"] == waived, "处罚确认", "免除", key="事件编号")
    # the manager's waiver is read back by the merge alone, and the scan's sheets stay filled
    assert sync(shops, out, state, "2026-11-20T10:05").exit_code == 0
    after = {p["事件编号"]: p["处罚确认"] for p in rows_of(out, "处罚", key="事件编号")}
    assert after[waived] == "免除"
    assert rows_of(out, "逾期", key="投诉编号")
    summary = [r for r in grid(out, "汇总") if any(v not in ("", None) for v in r)]
    assert len(summary) > 10
    # and it is in the store: a render from the store alone shows it again
    store = open_store(state)
    assert store.manager_edits("处罚")[(waived,)] == {"confirm": "免除"}


# 2 ------------------------------------------------------------------------------------------
def _approvals(out: Path) -> dict[str, str]:
    return {r["投诉内容"]: r["主管批示"] for r in rows_of(out, "全部投诉") if r["主管批示"]}


def test_approvals_on_rows_without_id_and_on_repeated_ids_stay_on_their_complaint(tmp_path: Path) -> None:
    shops, out, state = tmp_path / "SH01", tmp_path / "汇总.xlsx", tmp_path / "state.db"
    rows = [row(1, complaint_id=None), row(2, complaint_id=None), row(3, complaint_id="SH01-X"),
            row(4, complaint_id="SH01-X"), row(5)]
    shop_file(shops, rows)
    assert sync(shops, out, state).exit_code == 0
    for i in range(1, 6):
        type_into(out, "全部投诉", lambda v, i=i: v["投诉内容"] == f"第{i}台洗衣机漏水", "主管批示", f"批示{i}")
    assert sync(shops, out, state, "2026-11-20T10:05").exit_code == 0
    want = {f"第{i}台洗衣机漏水": f"批示{i}" for i in range(1, 6)}
    assert _approvals(out) == want
    # the shop re-sorts its sheet and inserts a new complaint on top: every approval stays
    shop_file(shops, [row(9, complaint_id=None), *reversed(rows)])
    assert sync(shops, out, state, "2026-11-20T10:10").exit_code == 0
    assert _approvals(out) == want
    # the shop types an id into a row that had none (in place): its approval follows it
    rows2 = [row(9, complaint_id=None), *reversed(rows)]
    rows2[-1] = dict(rows2[-1], complaint_id="SH01-NEW")   # row(1), still at the bottom
    shop_file(shops, rows2)
    assert sync(shops, out, state, "2026-11-20T10:15").exit_code == 0
    assert _approvals(out) == want
    assert next(r for r in rows_of(out, "全部投诉") if r["投诉内容"] == "第1台洗衣机漏水")["投诉编号"] == "SH01-NEW"
    # the shop deletes a complaint a manager wrote on: the approval is shown on 冲突, not lost
    shop_file(shops, [r for r in rows2 if r["description"] != "第2台洗衣机漏水"])
    assert sync(shops, out, state, "2026-11-20T10:20").exit_code == 0
    orphans = [r for r in rows_of(out, "冲突", key="类型") if r["类型"] == "主管批示无对应投诉"]
    assert len(orphans) == 1 and "批示2" in orphans[0]["差异"]


# 3 ------------------------------------------------------------------------------------------
def test_a_new_store_adopts_the_managers_cells_and_a_mistyped_one_is_refused(tmp_path: Path) -> None:
    shops, out, state = tmp_path / "SH01", tmp_path / "汇总.xlsx", tmp_path / "state.db"
    shop_file(shops, [row(1), row(2, complaint_id=None)])
    assert sync(shops, out, state).exit_code == 0
    type_into(out, "全部投诉", lambda v: v["投诉内容"] == "第2台洗衣机漏水", "主管批示", "同意退款")
    before = out.read_bytes()
    # a typo in --state: refused, nothing created, the workbook untouched
    r = cli("scan", "--state", tmp_path / "stat.db", "--out", out, "--now", "2026-11-20T10:00")
    assert r.exit_code == 2 and "stat.db" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "stat.db").exists() and out.read_bytes() == before
    r = cli("mail", "list", "--store", tmp_path / "stat.db")
    assert r.exit_code == 2 and not (tmp_path / "stat.db").exists()
    # the store is lost (deleted, or the move to PostgreSQL): the new one adopts the edits
    for p in tmp_path.glob("state.db*"):
        p.unlink()
    assert sync(shops, out, tmp_path / "new.db", "2026-11-20T10:05").exit_code == 0
    assert _approvals(out) == {"第2台洗衣机漏水": "同意退款"}
    assert any(r["状态"] == "已采用" for r in rows_of(out, "来源"))
    assert sync(shops, out, tmp_path / "new.db", "2026-11-20T10:10").exit_code == 0
    assert _approvals(out) == {"第2台洗衣机漏水": "同意退款"}
    # an empty store never rewrites a workbook that holds complaints
    empty = tmp_path / "nothing"
    empty.mkdir()
    before = out.read_bytes()
    r = sync(empty, out, tmp_path / "other.db", "2026-11-20T10:15")
    assert r.exit_code == 2 and out.read_bytes() == before


def test_a_new_store_finds_a_row_whose_id_became_repeated_meanwhile(tmp_path: Path) -> None:
    """The manager wrote on a complaint whose id was unique; the shop then typed that id on a
    second row too, and the store was lost before it saw the change. The new store keys both
    rows by id and anchor, a 记录标识 the workbook never showed: each approval must still land
    on its own complaint (found by 门店, 投诉编号 and the row's 受理时间/客户/描述), not on 冲突."""
    shops, out, state = tmp_path / "SH01", tmp_path / "汇总.xlsx", tmp_path / "state.db"
    shop_file(shops, [row(1), row(2), row(3)])
    assert sync(shops, out, state).exit_code == 0
    type_into(out, "全部投诉", lambda v: v["投诉内容"] == "第2台洗衣机漏水", "主管批示", "同意退款")
    type_into(out, "全部投诉", lambda v: v["投诉内容"] == "第3台洗衣机漏水", "主管批示", "先回访")
    # the shop copies row 2's id onto a new complaint; the store is lost before any merge
    shop_file(shops, [row(1), row(2), row(3), row(4, complaint_id="SH01-20261110-002")])
    for p in tmp_path.glob("state.db*"):
        p.unlink()
    assert sync(shops, out, tmp_path / "new.db", "2026-11-20T10:05").exit_code == 0
    assert _approvals(out) == {"第2台洗衣机漏水": "同意退款", "第3台洗衣机漏水": "先回访"}
    assert not [r for r in rows_of(out, "冲突", key="类型") if r["类型"] == "主管批示无对应投诉"]
    # and it stays there
    assert sync(shops, out, tmp_path / "new.db", "2026-11-20T10:10").exit_code == 0
    assert _approvals(out) == {"第2台洗衣机漏水": "同意退款", "第3台洗衣机漏水": "先回访"}


def test_a_new_store_never_gives_a_deleted_complaints_approval_to_the_one_that_shared_its_id(
        tmp_path: Path) -> None:
    """Two complaints shared an id, each with its manager's approval; the shop deleted one, so
    the id is unique again, and the store was lost before it saw that. The new store keys the
    complaint left by its id alone, a 记录标识 the workbook never showed. The approval of the
    deleted complaint must not move onto the one left (found by a hypothesis run in CI): it
    goes to 冲突, and the one left keeps its own."""
    shops, out, state = tmp_path / "SH01", tmp_path / "汇总.xlsx", tmp_path / "state.db"
    twin = "SH01-20261110-002"
    shop_file(shops, [row(1), row(2), row(3, complaint_id=twin)])
    assert sync(shops, out, state).exit_code == 0
    type_into(out, "全部投诉", lambda v: v["投诉内容"] == "第2台洗衣机漏水", "主管批示", "同意退款")
    type_into(out, "全部投诉", lambda v: v["投诉内容"] == "第3台洗衣机漏水", "主管批示", "先回访")
    for deleted, left, kept in ((2, 3, "先回访"), (3, 2, "同意退款")):
        folder = tmp_path / f"case{deleted}"
        folder.mkdir()
        book = folder / "汇总.xlsx"
        book.write_bytes(out.read_bytes())
        shop_file(folder / "SH01", [row(1), row(left, complaint_id=twin)])
        assert sync(folder / "SH01", book, folder / "new.db", "2026-11-20T10:05").exit_code == 0
        assert _approvals(book) == {f"第{left}台洗衣机漏水": kept}, deleted
        lost = "同意退款" if kept == "先回访" else "先回访"
        assert any(lost in str(r["差异"]) for r in rows_of(book, "冲突", key="类型")
                   if r["类型"] == "主管批示无对应投诉"), deleted


def test_an_approval_whose_complaint_left_survives_two_lost_stores(tmp_path: Path) -> None:
    """A manager approved a complaint the shop then deleted: the approval is on 冲突. After the
    store is lost, the new store adopts it (it has never seen that complaint, so the approval
    is on no row); when that store is lost too, the next one must still find it."""
    shops, out = tmp_path / "SH01", tmp_path / "汇总.xlsx"
    shop_file(shops, [row(1), row(2)])
    assert sync(shops, out, tmp_path / "a.db").exit_code == 0
    type_into(out, "全部投诉", lambda v: v["投诉内容"] == "第2台洗衣机漏水", "主管批示", "同意退款")
    shop_file(shops, [row(1)])
    assert sync(shops, out, tmp_path / "a.db", "2026-11-20T10:05").exit_code == 0

    def orphans() -> list[str]:
        return [str(r["差异"]) for r in rows_of(out, "冲突", key="类型") if r["类型"] == "主管批示无对应投诉"]

    assert any("同意退款" in d for d in orphans())
    for n, state in enumerate(("b.db", "c.db"), start=1):
        assert sync(shops, out, tmp_path / state, f"2026-11-20T10:1{n}").exit_code == 0
        assert any("同意退款" in d for d in orphans()), state
        assert "同意退款" not in _approvals(out).values()   # on no complaint's row


def test_a_new_store_does_not_send_again_what_the_workbook_records_as_sent(tmp_path: Path) -> None:
    from complaint_core.merged.render import render_merged
    from complaint_core.rules_book import load_rules
    from scheduler.api import scan_once, send_due
    from scheduler.transport import EmlFolderTransport

    shops, out, outbox = tmp_path / "SH01", tmp_path / "汇总.xlsx", tmp_path / "outbox"
    shop_file(shops, [row(1, first_contact_at=None)])
    rules = load_rules(rules_file(tmp_path / "rules.xlsx"))
    assert sync(shops, out, tmp_path / "a.db").exit_code == 0
    store = open_store(tmp_path / "a.db")
    scan_once(store, now=NOW, rules=rules)
    assert send_due(store, EmlFolderTransport(outbox), now=NOW).sent
    render_merged(store, out, now=NOW)
    sent = sorted(outbox.glob("*.eml"))
    assert sent
    # the store is lost; a new one merges, adopts the workbook, scans the same day: no resend
    assert sync(shops, out, tmp_path / "b.db").exit_code == 0
    fresh = open_store(tmp_path / "b.db")
    scan_once(fresh, now=NOW + timedelta(minutes=30), rules=rules)
    send_due(fresh, EmlFolderTransport(outbox), now=NOW + timedelta(minutes=30))
    assert sorted(outbox.glob("*.eml")) == sent


# 4 ------------------------------------------------------------------------------------------
def test_a_row_claiming_another_shop_never_replaces_that_shops_complaint(tmp_path: Path) -> None:
    root, out, state = tmp_path / "shops", tmp_path / "汇总.xlsx", tmp_path / "state.db"
    shop_file(root / "SH01", [row(1), row(2)])
    forged = row(1, description="被篡改的内容", updated_at=datetime(2026, 11, 19, 9, 0))
    shop_file(root / "SH02", [forged], shop="SH02")
    assert sync(root, out, state).exit_code == 0
    mine = [r for r in rows_of(out, "全部投诉") if r["投诉编号"] == "SH01-20261110-001"]
    by_shop = {r["门店(来源)"]: r["投诉内容"] for r in mine}
    assert by_shop == {"SH01": "第1台洗衣机漏水", "SH02": "被篡改的内容"}
    findings = rows_of(out, "校验问题")
    assert any(f["代码"] == "foreign_shop" and f["门店"] == "SH02" for f in findings)
    assert not rows_of(out, "冲突", key="类型")


# 5 ------------------------------------------------------------------------------------------
def test_a_shop_on_business_hours_is_scanned_and_fined_by_its_own_settings(tmp_path: Path) -> None:
    shops, out, state = tmp_path / "SH01", tmp_path / "汇总.xlsx", tmp_path / "state.db"
    friday = datetime(2026, 11, 20, 17, 30)
    shop_file(shops, [row(1, received_at=friday, first_contact_at=None)],
              settings={"按工作时间计算": "是", "上班时间": "09:00", "下班时间": "18:00"})
    assert sync(shops, out, state, "2026-11-21T12:00").exit_code == 0
    got = rows_of(out, "全部投诉")[0]
    # 30 minutes on Friday, 90 on Monday: due Monday 10:30, not Friday 19:30
    assert got["联系截止"] == datetime(2026, 11, 23, 10, 30)
    r = cli("scan", "--state", state, "--out", out, "--now", "2026-11-21T12:00", "--rules",
            rules_file(tmp_path / "rules.xlsx"))
    assert "逾期 0" in r.output and "新处罚 0" in r.output, r.output
    assert not [p for p in rows_of(out, "逾期", key="投诉编号") if p["状态"] == "已逾期"]


# 6 ------------------------------------------------------------------------------------------
def test_a_result_within_the_feedback_deadline_is_the_feedback_owed(tmp_path: Path) -> None:
    shops, out, state = tmp_path / "SH01", tmp_path / "汇总.xlsx", tmp_path / "state.db"
    shop_file(shops, [row(1, resolved_at=datetime(2026, 11, 11, 15, 0), resolution_plan="上门维修",
                          status="已解决")])
    assert sync(shops, out, state).exit_code == 0
    r = cli("scan", "--state", state, "--out", out, "--now", "2026-11-20T10:00", "--rules",
            rules_file(tmp_path / "rules.xlsx"))
    assert r.exit_code == 0
    assert not [p for p in rows_of(out, "处罚", key="事件编号") if "反馈" in str(p.get("原因"))]
    assert not [p for p in rows_of(out, "逾期", key="投诉编号") if p["时限"] == "反馈"]


# 7 ------------------------------------------------------------------------------------------
def test_now_with_a_zone_means_the_same_moment_on_every_command(tmp_path: Path) -> None:
    shops = tmp_path / "SH01"
    path = shop_file(shops, [row(1, first_contact_at=None), row(2)])
    local, utc = "2026-11-20T10:00", "2026-11-20T02:00:00+00:00"
    a = cli("validate", path, "--json", "--now", local)
    b = cli("validate", path, "--json", "--now", utc)
    assert json.loads(a.output) == json.loads(b.output)
    outs = {}
    for name, now in (("a", local), ("b", utc)):
        out, state = tmp_path / f"{name}.xlsx", tmp_path / f"{name}.db"
        assert sync(shops, out, state, now).exit_code == 0
        r = cli("scan", "--state", state, "--out", out, "--now", now)
        assert r.exit_code == 0, r.output
        outs[name] = (grid(out, "逾期"), grid(out, "全部投诉"))
    assert outs["a"] == outs["b"]


def test_a_bad_now_is_one_line_at_start_on_every_command(tmp_path: Path) -> None:
    shops = tmp_path / "SH01"
    path = shop_file(shops, [row(1)])
    for args in (["validate", path], ["suggest", path], ["scan", "--state", tmp_path / "s.db", "--out",
                                                          tmp_path / "m.xlsx"],
                 ["sync", "--source", shops, "--out", tmp_path / "m.xlsx", "--watch"],
                 ["sync", "--source", shops, "--out", tmp_path / "m.xlsx", "--once"]):
        r = cli(*args, "--now", "garbage")
        assert r.exit_code == 2, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1 and "garbage" in r.output, (args, r.output)
    assert not (tmp_path / "m.xlsx").exists()


# 8 ------------------------------------------------------------------------------------------
def test_template_and_rules_never_overwrite_without_force(tmp_path: Path) -> None:
    for cmd in ("template", "rules"):
        target = tmp_path / f"{cmd}.xlsx"
        target.write_bytes(b"a filled workbook")
        r = cli(cmd, target)
        assert r.exit_code == 2 and "--force" in r.output and len(r.output.strip().splitlines()) == 1
        assert target.read_bytes() == b"a filled workbook"
        assert cli(cmd, target, "--force").exit_code == 0
        assert openpyxl.load_workbook(target).sheetnames


def test_files_without_a_shop_code_speak_for_the_shop_most_of_their_rows_name(tmp_path: Path) -> None:
    # Several shops' home-made workbooks in one folder, no 设置 sheet: each is its rows' shop; a
    # lone row naming another shop is still foreign and replaces nothing.
    folder, out, state = tmp_path / "shops", tmp_path / "汇总.xlsx", tmp_path / "state.db"
    folder.mkdir()
    write_shop_workbook(folder / "一店.xlsx", [row(1), row(2), row(3)])
    forged = row(1, shop="SH02", description="被篡改的内容", updated_at=datetime(2026, 11, 19, 9, 0))
    write_shop_workbook(folder / "二店.xlsx", [row(7, shop="SH02", complaint_id="SH02-1"),
                                               row(8, shop="SH02", complaint_id="SH02-2"),
                                               dict(forged, shop="SH01")])
    assert sync(folder, out, state).exit_code == 0
    shown = rows_of(out, "全部投诉")
    assert {r["门店(来源)"] for r in shown} == {"SH01", "SH02"}
    assert next(r for r in shown if r["投诉编号"] == "SH01-20261110-001" and r["门店(来源)"] == "SH01")[
        "投诉内容"] == "第1台洗衣机漏水"
    foreign = [f for f in rows_of(out, "校验问题") if f["代码"] == "foreign_shop"]
    assert [(f["门店"], f["来源文件"]) for f in foreign] == [("SH02", "二店.xlsx")]


def test_a_new_complaint_where_a_deleted_one_stood_inherits_nothing(tmp_path: Path) -> None:
    # The shop deletes its last complaint and types a new one in the same row, in one save: the
    # manager's approval of the deleted complaint must not land on the new one.
    shops, out, state = tmp_path / "SH01", tmp_path / "汇总.xlsx", tmp_path / "state.db"
    shop_file(shops, [row(1), row(2, complaint_id=None)])
    assert sync(shops, out, state).exit_code == 0
    type_into(out, "全部投诉", lambda v: v["投诉内容"] == "第2台洗衣机漏水", "主管批示", "同意退款")
    shop_file(shops, [row(1), row(3, complaint_id=None)])
    assert sync(shops, out, state, "2026-11-20T10:05").exit_code == 0
    assert _approvals(out) == {"第2台洗衣机漏水": "同意退款"}   # on its (deleted) row, not on 第3台
    deleted = next(r for r in rows_of(out, "全部投诉") if r["投诉内容"] == "第2台洗衣机漏水")
    assert deleted["来源已删除"] == "是"
    orphans = [r for r in rows_of(out, "冲突", key="类型") if r["类型"] == "主管批示无对应投诉"]
    assert len(orphans) == 1 and "同意退款" in orphans[0]["差异"]
    # a description corrected in place (same 受理时间 and 客户姓名) keeps its approval
    type_into(out, "全部投诉", lambda v: v["投诉内容"] == "第3台洗衣机漏水", "主管批示", "先核实")
    shop_file(shops, [row(1), row(3, complaint_id=None, description="第3台洗衣机漏水，地板泡坏")])
    assert sync(shops, out, state, "2026-11-20T10:10").exit_code == 0
    assert _approvals(out)["第3台洗衣机漏水，地板泡坏"] == "先核实"
