"""Merging real shop workbooks into a real merged workbook, SQLite and PostgreSQL stores."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from complaint_core.merged.model import SHEET_ORDER
from complaint_core.store import open_store
from sync.api import merge_once
from tests.support.workbooks import NOW, sample_rows, write_shop_workbook


def grid(path: Path, sheet: str) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def all_rows(path: Path) -> list[dict]:
    g = grid(path, "全部投诉")
    head = g[1]
    return [dict(zip(head, r, strict=False)) for r in g[2:]]


def shops(tmp: Path, n: int = 2, rows: int = 20) -> list[Path]:
    out = []
    for i in range(n):
        folder = tmp / f"SH0{i + 1}"
        folder.mkdir()
        write_shop_workbook(folder / "投诉.xlsx", sample_rows(rows, seed=i, now=NOW, shop=f"SH0{i + 1}"))
        out.append(folder)
    return out


def test_merge_every_row_once_with_noise(tmp_path: Path, state_url: str) -> None:
    folders = shops(tmp_path)
    (folders[0] / "~$投诉.xlsx").write_bytes(b"owner")
    (folders[0] / ".~lock.投诉.xlsx#").write_text("lock")
    (folders[1] / "Cedd4100").write_bytes(b"tmp")
    (folders[1] / "broken.xlsx").write_bytes(b"PK\x03\x04 half written")
    wb = openpyxl.Workbook()
    wb.active.append(["月份", "销售额"])
    wb.save(folders[1] / "销售.xlsx")
    out = tmp_path / "merged.xlsx"
    before = {p: p.read_bytes() for p in (f / "投诉.xlsx" for f in folders)}
    report = merge_once(folders, out, state_url=state_url, now=NOW)
    assert CalamineWorkbook.from_path(str(out)).sheet_names[:len(SHEET_ORDER)] == list(SHEET_ORDER)
    rows = all_rows(out)
    assert len(rows) == 40 and report.rows == 40
    assert len({(r["门店"], r["投诉编号"]) for r in rows}) == 40
    assert {r["来源文件"] for r in rows} == {"投诉.xlsx"}
    failed = {r.path.name: r.reason for r in report.failed}
    assert set(failed) == {"broken.xlsx", "销售.xlsx"}
    sources = {Path(r[1]).name: r for r in grid(out, "来源")[2:]}
    assert "zip" in sources["broken.xlsx"][5] and sources["投诉.xlsx"][2] == 20
    assert all(p.read_bytes() == b for p, b in before.items())  # never write into a shop's file


def test_unchanged_files_not_reread_and_deleted_row_marked(tmp_path: Path, state_url: str) -> None:
    folders = shops(tmp_path)
    out = tmp_path / "merged.xlsx"
    merge_once(folders, out, state_url=state_url, now=NOW)
    rows = sample_rows(20, seed=0, now=NOW, shop="SH01")
    write_shop_workbook(folders[0] / "投诉.xlsx", rows[1:])
    report = merge_once(folders, out, state_url=state_url, now=NOW + timedelta(hours=1))
    assert [r.path.parent.name for r in report.read] == ["SH01"]
    merged = all_rows(out)
    assert len(merged) == 40
    gone = [r for r in merged if r["投诉编号"] == rows[0]["complaint_id"]]
    assert gone[0]["来源已删除"] == "是"
    store = open_store(state_url)
    from sqlalchemy import select

    from complaint_core.store import tables as t
    with store.engine.connect() as c:
        versions = c.execute(select(t.row_versions).where(t.row_versions.c.deleted.is_(True))).all()
    assert len(versions) == 1


def test_unreadable_then_fixed_keeps_last_good_rows(tmp_path: Path, state_url: str) -> None:
    folders = shops(tmp_path, 1)
    out = tmp_path / "merged.xlsx"
    merge_once(folders, out, state_url=state_url, now=NOW)
    good = (folders[0] / "投诉.xlsx").read_bytes()
    (folders[0] / "投诉.xlsx").write_bytes(good[: len(good) // 2])
    report = merge_once(folders, out, state_url=state_url, now=NOW + timedelta(minutes=1))
    assert report.failed and len(all_rows(out)) == 20
    assert "读取" in grid(out, "来源")[2][4] or "重试" in grid(out, "来源")[2][4]
    (folders[0] / "投诉.xlsx").write_bytes(good)
    os.utime(folders[0] / "投诉.xlsx", None)
    report = merge_once(folders, out, state_url=state_url, now=NOW + timedelta(minutes=2))
    assert not report.failed and grid(out, "来源")[2][4] == "正常"


def test_pending_retries_lists_failed_files_with_their_due_time(tmp_path: Path, state_url: str) -> None:
    """What the daemon's retry timer asks the store: failed files still present, and when."""
    from sync.pipeline import pending_retries

    folders = shops(tmp_path, 2)
    broken = folders[1] / "投诉.xlsx"
    good = broken.read_bytes()
    broken.write_bytes(good[:100])
    out = tmp_path / "merged.xlsx"
    merge_once(folders, out, state_url=state_url, now=NOW)
    store = open_store(state_url)
    try:
        assert pending_retries(store, folders) == {broken: NOW + timedelta(seconds=5)}
        assert pending_retries(store, folders[:1]) == {}        # only the folders asked about
        merge_once(folders, out, state_url=state_url, now=NOW + timedelta(seconds=6))  # still broken
        assert pending_retries(store, folders) == {broken: NOW + timedelta(seconds=26)}  # 20 s more
        broken.write_bytes(good)
        os.utime(broken, None)
        merge_once(folders, out, state_url=state_url, now=NOW + timedelta(seconds=7))
        assert pending_retries(store, folders) == {}
    finally:
        store.engine.dispose()


def test_conflict_copy_flagged_and_conflicts_listed(tmp_path: Path, state_url: str) -> None:
    folders = shops(tmp_path, 1)
    src = folders[0] / "投诉.xlsx"
    shutil.copy(src, folders[0] / "投诉 (冲突副本 2026-11-20).xlsx")
    rows = sample_rows(20, seed=0, now=NOW, shop="SH01")
    other = [dict(r) for r in rows[:2]]
    other[0]["notes"] = "另一台电脑上改过"
    other[0]["updated_at"] = NOW + timedelta(days=1)
    write_shop_workbook(folders[0] / "补录.xlsx", other)
    out = tmp_path / "merged.xlsx"
    report = merge_once(folders, out, state_url=state_url, now=NOW + timedelta(days=2))
    assert [r.path.name for r in report.skipped if r.outcome == "conflict_copy"]
    merged = all_rows(out)
    assert len(merged) == 20  # the copy is not merged twice; the same ids are one record
    kept = next(r for r in merged if r["投诉编号"] == rows[0]["complaint_id"])
    assert kept["备注"] == "另一台电脑上改过" and kept["来源文件"] == "补录.xlsx"
    conflicts = grid(out, "冲突")[2:]
    assert any("备注" in r[5] for r in conflicts)
    statuses = {Path(r[1]).name: r[4] for r in grid(out, "来源")[2:]}
    assert statuses["投诉 (冲突副本 2026-11-20).xlsx"] == "同步冲突副本"


def test_conflicts_counted_by_the_store_as_the_records_list_them(tmp_path: Path, state_url: str) -> None:
    # the count the daemon reports while a manager has the merged workbook open: from the store,
    # without every complaint in memory, and equal to what decoding every complaint lists
    folders = shops(tmp_path, 1)
    rows = sample_rows(20, seed=0, now=NOW, shop="SH01")
    again = [dict(r) for r in rows[:3]]
    again[0]["notes"] = "另一台电脑上改过"
    again[2]["notes"] = "又改过"          # rows[1] is copied as it is: no conflict
    third = [dict(rows[0], notes="第三个版本")]
    write_shop_workbook(folders[0] / "补录.xlsx", again)
    write_shop_workbook(folders[0] / "补录2.xlsx", third)
    out = tmp_path / "merged.xlsx"
    merge_once(folders, out, state_url=state_url, now=NOW)
    store = open_store(state_url)
    try:
        assert store.conflict_count() == len(store.conflicts()) == 3   # rows[0] twice, rows[2] once
        (folders[0] / "补录2.xlsx").unlink()   # its row is marked deleted: no longer in conflict
        merge_once(folders, out, state_url=state_url, now=NOW + timedelta(hours=1))
        assert store.conflict_count() == len(store.conflicts()) == 2
    finally:
        store.engine.dispose()


def test_managers_cells_of_an_old_store_keyed_by_shop_and_id_move_to_their_complaints(
        tmp_path: Path, state_url: str) -> None:
    # stores written before complaints had references kept 全部投诉's cells by shop + id; the
    # first render moves them to the complaint's reference (a shop at a time, issue 17)
    import json

    from sqlalchemy import insert, select

    from complaint_core.store import tables as t

    folders = shops(tmp_path, 2, rows=5)
    out = tmp_path / "merged.xlsx"
    merge_once(folders, out, state_url=state_url, now=NOW)
    store = open_store(state_url)
    try:
        rec = next(r for r in store.current_records() if r["shop"] == "SH02")
        with store.begin() as c:
            for key, value in (([rec["shop"], rec["complaint_id"]], "同意退款"), (["SH09", "无此投诉"], "孤立")):
                c.execute(insert(t.manager_edits).values(sheet="全部投诉", row_key=json.dumps(key, ensure_ascii=False),
                                                         column="manager_approval", value=value, seen_at=NOW))
        assert store.migrate_legacy_edits() == 2
        with store.engine.connect() as c:
            cells = c.execute(select(t.manager_edits.c.row_key, t.manager_edits.c.value)
                              .where(t.manager_edits.c.sheet == "全部投诉")).all()
        assert cells == [(json.dumps([rec["record_ref"]]), "同意退款")]
        assert store.migrate_legacy_edits() == 0
    finally:
        store.engine.dispose()


def test_manager_edits_survive_remerge(tmp_path: Path, state_url: str) -> None:
    folders = shops(tmp_path, 1)
    out = tmp_path / "merged.xlsx"
    merge_once(folders, out, state_url=state_url, now=NOW)
    wb = openpyxl.load_workbook(out)
    ws = wb["全部投诉"]
    head = [c.value for c in ws[2]]
    col = head.index("主管批示") + 1
    target = ws.cell(row=5, column=head.index("投诉编号") + 1).value
    ws.cell(row=5, column=col, value="同意退款，=SUM(A1)")
    wb.save(out)
    write_shop_workbook(folders[0] / "投诉.xlsx", sample_rows(20, seed=0, now=NOW, shop="SH01")[::-1])
    merge_once(folders, out, state_url=state_url, now=NOW + timedelta(hours=1))
    merge_once(folders, out, state_url=state_url, now=NOW + timedelta(hours=2))
    row = next(r for r in all_rows(out) if r["投诉编号"] == target)
    assert row["主管批示"] == "同意退款，=SUM(A1)"


def test_shop_own_approval_is_not_taken_for_a_manager_edit(tmp_path: Path, state_url: str) -> None:
    # The shop manager writes 主管批示 in the shop's file; the merged workbook shows it. When the
    # shop changes it later, the merged workbook must show the new text, not keep the old one
    # as if a regional manager had typed it; a regional manager's own typing still wins.
    folder = tmp_path / "SH01"
    folder.mkdir()
    rows = sample_rows(6, seed=3, now=NOW, shop="SH01")
    rows[0]["manager_approval"] = "店长：同意退款"
    rows[1]["manager_approval"] = "店长：待查"
    write_shop_workbook(folder / "投诉.xlsx", rows)
    out = tmp_path / "merged.xlsx"
    merge_once([folder], out, state_url=state_url, now=NOW)
    wb = openpyxl.load_workbook(out)
    ws = wb["全部投诉"]
    head = [c.value for c in ws[2]]
    ids = [ws.cell(row=r, column=head.index("投诉编号") + 1).value for r in range(3, ws.max_row + 1)]
    ws.cell(row=3 + ids.index(rows[1]["complaint_id"]), column=head.index("主管批示") + 1, value="区域经理：严肃处理")
    wb.save(out)
    rows[0]["manager_approval"] = "店长：同意退款，已赔付"
    rows[1]["manager_approval"] = "店长：已查明"
    write_shop_workbook(folder / "投诉.xlsx", rows)
    for hour in (1, 2):
        merge_once([folder], out, state_url=state_url, now=NOW + timedelta(hours=hour))
    got = {r["投诉编号"]: r["主管批示"] for r in all_rows(out)}
    assert got[rows[0]["complaint_id"]] == "店长：同意退款，已赔付"
    assert got[rows[1]["complaint_id"]] == "区域经理：严肃处理"
    assert "_rendered" in CalamineWorkbook.from_path(str(out)).sheet_names


def test_same_result_regardless_of_order(tmp_path: Path, state_url: str) -> None:
    folders = shops(tmp_path, 3, rows=10)
    out1, out2 = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    merge_once(folders, out1, state_url=str(tmp_path / "a.sqlite"), now=NOW)
    for f in reversed(folders):
        merge_once([f], out2, state_url=str(tmp_path / "b.sqlite"), now=NOW)
    merge_once(folders, out2, state_url=str(tmp_path / "b.sqlite"), now=NOW)
    strip = [{k: v for k, v in r.items()} for r in all_rows(out1)]
    assert strip == all_rows(out2)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "state.sqlite")
    return request.getfixturevalue("pg_url")


def test_findings_of_an_older_store_are_kept(tmp_path: Path) -> None:
    # A state.db written before findings were kept per file: reopening it moves them over
    # once, so 校验问题 still lists them although the shop files did not change.
    from sqlalchemy import func, insert, select

    from complaint_core.store import tables as t

    path = tmp_path / "old.sqlite"
    store = open_store(path)
    old = [dict(source_path="/shares/SH01/a.xlsx", shop="SH01", sheet="投诉登记", row=row, cell=f"B{row}",
                field="received_at", severity="error", code="bad_datetime", message=f"第{row}行日期无法识别")
           for row in (4, 3)] + [dict(source_path="/shares/SH02/b.xlsx", shop="SH02", sheet="投诉登记", row=2,
                                      cell="J2", field="loss_amount", severity="warning", code="negative",
                                      message="金额为负")]
    with store.begin() as c:
        c.execute(insert(t.findings), old)
    store.engine.dispose()
    again = open_store(path)
    assert again.findings() == [
        ("SH01", "/shares/SH01/a.xlsx", "投诉登记", 3, "B3", "received_at", "error", "bad_datetime", "第3行日期无法识别"),
        ("SH01", "/shares/SH01/a.xlsx", "投诉登记", 4, "B4", "received_at", "error", "bad_datetime", "第4行日期无法识别"),
        ("SH02", "/shares/SH02/b.xlsx", "投诉登记", 2, "J2", "loss_amount", "warning", "negative", "金额为负")]
    with again.begin() as c:
        assert c.execute(select(func.count()).select_from(t.findings)).scalar() == 0
    assert open_store(path).findings() == again.findings()   # moved once, not twice


def test_a_removed_file_marks_every_row_deleted_and_a_restored_one_brings_them_back(
        tmp_path: Path, state_url: str) -> None:
    from sqlalchemy import func, select

    from complaint_core.store import tables as t

    folders = shops(tmp_path)
    out = tmp_path / "merged.xlsx"
    merge_once(folders, out, state_url=state_url, now=NOW)
    shop_file = folders[0] / "投诉.xlsx"
    saved = shop_file.read_bytes()
    shop_file.unlink()
    # the folder now holds no workbook at all: an unmounted share looks the same, so for a day
    # its rows stay as they were, marked 不可用 on 来源
    merge_once(folders, out, state_url=state_url, now=NOW + timedelta(hours=1))
    assert not any(r["来源已删除"] for r in all_rows(out))
    assert any(row[4] == "不可用" for row in grid(out, "来源")[2:])
    merge_once(folders, out, state_url=state_url, now=NOW + timedelta(hours=26))
    merged = all_rows(out)
    assert len(merged) == 40     # nothing dropped: the removed shop's rows stay, marked
    assert sum(r["来源已删除"] == "是" for r in merged) == 20
    assert any(row[4] == "文件已删除" for row in grid(out, "来源")[2:])
    store = open_store(state_url)

    def versions() -> dict[tuple[int, bool], int]:
        with store.engine.connect() as c:
            q = (select(t.source_rows.c.version, t.source_rows.c.deleted, func.count())
                 .where(t.source_rows.c.source_path == str(shop_file))
                 .group_by(t.source_rows.c.version, t.source_rows.c.deleted))
            return {(v, d): n for v, d, n in c.execute(q)}
    assert versions() == {(2, True): 20}
    with store.engine.connect() as c:
        history = c.execute(select(func.count()).select_from(t.row_versions)
                            .where(t.row_versions.c.source_path == str(shop_file))
                            .where(t.row_versions.c.deleted.is_(True))).scalar_one()
    assert history == 20
    shop_file.write_bytes(saved)
    merge_once(folders, out, state_url=state_url, now=NOW + timedelta(hours=27))
    assert versions() == {(3, False): 20}
    assert not any(r["来源已删除"] for r in all_rows(out))
    store.engine.dispose()


def test_every_version_of_a_row_is_kept_and_its_json_stored_once(tmp_path: Path, state_url: str) -> None:
    # row_versions keeps every version of every row; the one a file holds now has its JSON in
    # source_rows only (issue 17: stored twice, it was 40% of a first merge's writes). Each
    # version must still read back as the file had it, through edits, a deletion, a return and
    # an id typed into a row that had none.
    from sqlalchemy import func, select

    from complaint_core.store import tables as t

    folder = tmp_path / "SH01"
    folder.mkdir()
    shop_file = folder / "投诉.xlsx"
    rows = sample_rows(6, seed=5, now=NOW, shop="SH01")
    rows[5]["complaint_id"] = None
    out = tmp_path / "merged.xlsx"
    steps: list[list[dict]] = []

    def save(rows: list[dict], hours: int) -> None:
        steps.append([dict(r) for r in rows])
        write_shop_workbook(shop_file, rows)
        merge_once([folder], out, state_url=state_url, now=NOW + timedelta(hours=hours))

    save(rows, 1)
    rows[0]["description"] = "第二次：顾客补充了发票"
    save(rows, 2)
    gone = rows.pop(1)
    save(rows, 3)
    rows.insert(1, dict(gone, description="又回来了，内容也改了"))
    save(rows, 4)
    rows[5]["complaint_id"] = "SH01-20261101-099"   # the id the row lacked
    save(rows, 5)

    store = open_store(state_url)
    with store.engine.connect() as c:
        keys = {r.record_key: r.version for r in c.execute(select(t.source_rows.c.record_key, t.source_rows.c.version))}
        stored = {k: (n, total) for k, n, total in c.execute(
            select(t.row_versions.c.record_key, func.count(), func.sum(func.length(t.row_versions.c.data)))
            .group_by(t.row_versions.c.record_key))}
    assert len(keys) == 6
    first, back, late = (f"SH01\x1f{rows[0]['complaint_id']}", f"SH01\x1f{gone['complaint_id']}",
                         "SH01\x1fSH01-20261101-099")
    hist = {k: store.history(shop_file, k) for k in keys}
    assert [h["values"]["description"] for h in hist[first]] == [
        steps[0][0]["description"], "第二次：顾客补充了发票"]
    assert [(h["version"], h["deleted"], h["values"].get("description")) for h in hist[back]] == [
        (1, False, gone["description"]), (2, True, None), (3, False, "又回来了，内容也改了")]
    # the row without an id: its versions before the id was typed are kept under its new key
    # only from the version the id arrived; the earlier ones stay under the key it had then
    assert [h["values"]["complaint_id"] for h in hist[late]] == ["SH01-20261101-099"]
    earlier = [k for k in keys if "@" in k]
    assert not earlier   # the stored row moved to its new key
    with store.engine.connect() as c:
        before = c.execute(select(t.row_versions.c.record_key, t.row_versions.c.version)
                           .where(t.row_versions.c.record_key.like("%@%"))).all()
    assert before and all(store.history(shop_file, k)[0]["values"]["description"] == steps[0][5]["description"]
                          for k, _v in before)
    # rows below the one that left moved up and back (a new version each, the same content):
    # every version reads as the row; the newest, the one source_rows holds, is stored there only
    with store.engine.connect() as c:
        newest = {k: d for k, v, d in c.execute(select(t.row_versions.c.record_key, t.row_versions.c.version,
                                                       t.row_versions.c.data)) if keys.get(k) == v}
    assert set(newest) == set(keys) and set(newest.values()) == {""}
    for k in set(keys) - {first, back, late}:
        assert all(h["values"] == hist[k][-1]["values"] for h in hist[k]) and len(hist[k]) == stored[k][0]
    store.engine.dispose()


def test_a_folder_given_inside_another_is_read_once(tmp_path):
    """`--source 门店 --source 门店/二店`: the inner folder's files were listed twice, and each
    was reported read twice (the store kept one copy)."""
    outer = tmp_path / "门店"
    inner = outer / "二店"
    inner.mkdir(parents=True)
    write_shop_workbook(outer / "a.xlsx", sample_rows(2, seed=1, now=NOW, shop="SH01"))
    write_shop_workbook(inner / "b.xlsx", sample_rows(2, seed=2, now=NOW, shop="SH02"))
    report = merge_once([outer, inner], tmp_path / "merged.xlsx", now=NOW)
    assert sorted(r.path.name for r in report.read) == ["a.xlsx", "b.xlsx"]
