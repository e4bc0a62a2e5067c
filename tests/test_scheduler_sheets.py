"""汇总/逾期/处罚 in the real merged workbook: charts there, LibreOffice opens it, 处罚确认 kept."""

from __future__ import annotations

import zipfile
from datetime import datetime

from openpyxl import load_workbook

import scheduler.api  # noqa: F401
from complaint_core.merged.render import render_merged
from complaint_core.store import open_store
from scheduler.api import demo_chain, scan_once, sheet_providers
from tests.test_mail_outbox import RULES, fill

NOW = datetime(2026, 3, 8, 11, 0)


def summary_value(ws, label):
    for row in ws.iter_rows(values_only=True):
        for i, v in enumerate(row):
            if v == label:
                return row[i + 1]
    raise AssertionError(label)


def test_sheets_charts_and_confirmations(tmp_path, soffice_opens):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    fill(open_store(url))
    store = open_store(url)
    scan_once(store, now=NOW, rules=RULES)
    out = tmp_path / "汇总.xlsx"
    render_merged(store, out, now=NOW, providers=sheet_providers(RULES))
    wb = load_workbook(out)
    assert wb.sheetnames[0] == "汇总" and {"逾期", "处罚"} <= set(wb.sheetnames)
    pen = wb["处罚"]
    header_row = next(r for r in pen.iter_rows() if any(c.value == "处罚确认" for c in r))
    cols = {c.value: c.column for c in header_row}
    data = [r for r in pen.iter_rows(min_row=header_row[0].row + 1) if r[cols["事件编号"] - 1].value]
    assert len(data) == 12 and sum(r[cols["金额"] - 1].value for r in data) == 2 * (50 + 50 + 4 * 20)
    assert summary_value(wb["汇总"], "张三") == 360
    overdue = [r for r in wb["逾期"].iter_rows(values_only=True) if r and r[0] in ("A-0", "A-1")]
    assert len(overdue) == 4 and all("截止" in str(r[-1]) for r in overdue)
    with zipfile.ZipFile(out) as z:
        assert len([n for n in z.namelist() if n.startswith("xl/charts/chart")]) >= 5
    # A manager waives one 50-yuan event: kept across a rewrite and left out of the total.
    first = data[0]
    amount = first[cols["金额"] - 1].value
    pen.cell(first[0].row, cols["处罚确认"]).value = "免除"
    wb.save(out)
    render_merged(open_store(url), out, now=NOW, providers=sheet_providers(RULES))
    wb = load_workbook(out)
    kept = [r for r in wb["处罚"].iter_rows(values_only=True) if "免除" in r]
    assert len(kept) == 1
    # render_merged reads the manager's edits back after the providers ran, so the summary
    # reflects the waiver from the next rewrite on (the daemon rewrites on every scan).
    render_merged(open_store(url), out, now=NOW, providers=sheet_providers(RULES))
    wb = load_workbook(out)
    assert [r for r in wb["处罚"].iter_rows(values_only=True) if "免除" in r]
    assert summary_value(wb["汇总"], "张三") == 360 - amount
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
