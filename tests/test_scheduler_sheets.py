"""汇总/逾期/处罚 in the real merged workbook: charts there, LibreOffice opens it, 处罚确认 kept."""

from __future__ import annotations

import zipfile
from datetime import datetime

from openpyxl import load_workbook

import scheduler.api  # noqa: F401
from complaint_core.merged.render import render_merged
from complaint_core.store import open_store
from scheduler.api import demo_chain, scan_once
from tests.test_mail_outbox import RULES, fill

NOW = datetime(2026, 3, 8, 11, 0)


def summary_value(ws, label):
    for row in ws.iter_rows(values_only=True):
        for i, v in enumerate(row):
            if v == label:
                return row[i + 1]
    raise AssertionError(label)


def penalty_row(ws, person):
    """(已确认, 待确认, 申诉中) of ``person`` in the 汇总 penalty block."""
    for row in ws.iter_rows(values_only=True):
        if row[0] == person:
            return tuple(row[1:4])
    raise AssertionError(person)


def test_sheets_charts_and_confirmations(tmp_path, soffice_opens):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    fill(open_store(url))
    store = open_store(url)
    scan_once(store, now=NOW, rules=RULES)
    out = tmp_path / "汇总.xlsx"
    render_merged(store, out, now=NOW)
    wb = load_workbook(out)
    assert wb.sheetnames[0] == "汇总" and {"逾期", "处罚"} <= set(wb.sheetnames)
    pen = wb["处罚"]
    header_row = next(r for r in pen.iter_rows() if any(c.value == "处罚确认" for c in r))
    cols = {c.value: c.column for c in header_row}
    data = [r for r in pen.iter_rows(min_row=header_row[0].row + 1) if r[cols["事件编号"] - 1].value]
    assert len(data) == 12 and sum(r[cols["金额"] - 1].value for r in data) == 2 * (50 + 50 + 4 * 20)
    # nobody has reviewed them yet: 待确认, kept apart from what is owed
    assert penalty_row(wb["汇总"], "张三") == (0, 360, 0)
    rate = next(r[1] for r in wb["汇总"].iter_rows() if r[0].value == "2小时内联系占比")
    assert 0 <= rate.value <= 1 and rate.number_format == "0.0%"   # shown as 76.0%, not 0.76
    overdue = [r for r in wb["逾期"].iter_rows(values_only=True) if r and r[0] in ("A-0", "A-1")]
    assert len(overdue) == 4 and all("截止" in str(r[-1]) for r in overdue)
    with zipfile.ZipFile(out) as z:
        assert len([n for n in z.namelist() if n.startswith("xl/charts/chart")]) >= 5
    # A manager waives one 50-yuan event: kept across a rewrite and left out of the total.
    first = data[0]
    amount = first[cols["金额"] - 1].value
    pen.cell(first[0].row, cols["处罚确认"]).value = "免除"
    wb.save(out)
    render_merged(open_store(url), out, now=NOW)
    wb = load_workbook(out)
    kept = [r for r in wb["处罚"].iter_rows(values_only=True) if "免除" in r]
    assert len(kept) == 1
    # render_merged reads the manager's edits back before it builds the sheets, so the summary
    # reflects the waiver from the next rewrite on (the daemon rewrites on every scan).
    render_merged(open_store(url), out, now=NOW)
    wb = load_workbook(out)
    assert [r for r in wb["处罚"].iter_rows(values_only=True) if "免除" in r]
    assert penalty_row(wb["汇总"], "张三") == (0, 360 - amount, 0)
    soffice_opens(out)


def test_demo_chain_writes_eml_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    fill(open_store(url))
    for _ in range(2):
        rep = demo_chain(url, tmp_path / "m.xlsx", now=NOW, outbox_dir=tmp_path / "outbox")
    assert rep["scan"].new_penalties == 0
    assert (tmp_path / "m.xlsx").exists()
    # No staff directory in the default rules: the demo's rules decide who gets mail.
    assert list((tmp_path / "outbox").glob("*.eml")) == []


def put(url, records):
    """Complaints straight into the store, the way the sync card leaves them (one source row each)."""
    from sqlalchemy import insert

    from complaint_core.store import tables as t
    from complaint_core.store.db import content_hash, encode_values, record_key
    with open_store(url).begin() as c:
        for i, values in enumerate(records):
            data = encode_values(values)
            c.execute(insert(t.source_rows).values(
                source_path="/shops/A.xlsx", sheet="投诉登记", row=i + 2, shop="A", complaint_id=values["complaint_id"],
                record_key=record_key("A", values["complaint_id"], "", 0), content_hash=content_hash(data), data=data,
                version=1, first_seen=NOW, last_seen=NOW, deleted=False))


def test_time_to_resolution_block_and_chart(tmp_path):
    import re
    from datetime import timedelta

    got = datetime(2026, 2, 20, 9, 0)
    took = {"A-0": timedelta(hours=2), "A-1": timedelta(hours=24), "A-2": timedelta(hours=30),
            "A-3": timedelta(days=5), "A-4": timedelta(days=10), "A-5": None,
            "A-6": NOW - got + timedelta(hours=1),   # resolved after "now": not resolved yet as of now
            "A-7": timedelta(hours=1)}               # judged 不成立: no resolution to time
    records = []
    for cid, delta in took.items():
        v = {"complaint_id": cid, "shop": "A", "received_at": got, "status": "处理中"}
        if delta is not None:
            v.update(resolved_at=got + delta, status="已解决")
        if cid == "A-7":
            v.update(status="不成立", validity="不成立")
        records.append(v)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    put(url, records)
    out = tmp_path / "汇总.xlsx"
    render_merged(open_store(url), out, now=NOW)

    # Hand count: ≤1天 A-0 and A-1 (exactly one day), 1-3天 A-2, 3-7天 A-3, >7天 A-4, 未解决.
    expected = {"≤1天": 2, "1-3天": 1, "3-7天": 1, ">7天": 1, "未解决": 2}
    ws = load_workbook(out)["汇总"]
    cells = {c.value: c for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    title = cells["解决用时分布"]
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=title.row + 2, max_row=title.row + 6, max_col=3)]
    assert {r[0]: r[1] for r in rows} == expected
    assert [r[2] for r in rows] == [round(n / 7, 3) for n in expected.values()]

    with zipfile.ZipFile(out) as z:
        charts = [z.read(n).decode("utf-8") for n in z.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n)]
    ttr = [x for x in charts if "解决用时分布" in x]
    assert len(ttr) == 1 and "<c:barChart>" in ttr[0]
    # The chart plots exactly the five counts and their labels.
    first, last = title.row + 2, title.row + 6
    assert f"<c:f>汇总!$B${first}:$B${last}</c:f>" in ttr[0]
    assert f"<c:f>汇总!$A${first}:$A${last}</c:f>" in ttr[0]
