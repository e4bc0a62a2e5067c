"""Customer text is data in every output: never a formula, never a link.

Every dangerous prefix is typed into a template-based shop workbook (text cells, and cells
whose value the validator quotes back in its messages), then the real CLI runs
``validate --mark`` and ``suggest`` on it. Each written workbook is checked with openpyxl
(no cell of data type 'f', no hyperlink) and at the XML level (no <f>, no hyperlink part).
"""

from __future__ import annotations

import re
import zipfile
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner
from openpyxl import load_workbook

from complaint_core.schema import FIELD_BY_KEY, SHEET_COMPLAINTS, SHEET_FINDINGS
from complaint_core.template import build_template
from complaint_core.textsafe import is_dangerous
from complaint_desk.cli import main

DANGEROUS = ["=1+2", "+86 138 0000 0000", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1", "＝1+1",
             '=HYPERLINK("http://x","y")', "http://evil.example/steal", "=cmd|' /C calc'!A0"]
NOW = "2026-11-20 10:00"
TEXT_KEYS = ("customer_name", "subject", "description", "responsible_dept", "resolution_plan",
             "notes", "received_by")
# Cells of other types: the validator quotes the bad value in its message (校验结果 sheet).
QUOTED_KEYS = ("feedback_at", "loss_amount", "channel", "customer_email", "customer_phone")


def _header_row(ws) -> int:  # noqa: ANN001
    for row in ws.iter_rows(min_row=1, max_row=20):
        if any(c.value == FIELD_BY_KEY["received_at"].zh for c in row):
            return row[0].row
    raise AssertionError("template has no header row")


def _shop_workbook(path: Path) -> Path:
    build_template(path, shop_code="S01")
    wb = load_workbook(path)
    ws = wb[SHEET_COMPLAINTS]
    hr = _header_row(ws)
    cols = {c.value: c.column for c in ws[hr] if c.value}
    for i, bad in enumerate(DANGEROUS):
        r = hr + 1 + i
        values = {"received_at": datetime(2026, 11, 19, 9, 0), "channel": "电话",
                  "category": "服务态度"}
        values.update({k: bad for k in TEXT_KEYS})
        values.update({k: bad for k in QUOTED_KEYS})
        for key, value in values.items():
            cell = ws.cell(row=r, column=cols[FIELD_BY_KEY[key].zh], value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # the shop typed it as text (Excel would store it so)
    wb.save(path)
    return path


def assert_inert(path: Path) -> int:
    """No formula, no hyperlink anywhere in the workbook; returns the dangerous cells seen."""
    wb = load_workbook(path)
    seen = 0
    for ws in wb.worksheets:
        assert not ws._hyperlinks, f"{ws.title} has hyperlinks"
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate} is a formula: {cell.value!r}"
                assert cell.hyperlink is None, f"{ws.title}!{cell.coordinate} is a link"
                seen += is_dangerous(cell.value) or "http://evil" in str(cell.value or "")
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", name):
                xml = zf.read(name).decode("utf-8")
                # The template's own validations/conditional formats use <formula>; a cell
                # formula is <f>. No sheet may hold a cell formula or a hyperlink element.
                assert "<f>" not in xml and "<f " not in xml, f"{name} holds a cell formula"
                assert "<hyperlink" not in xml, f"{name} holds a hyperlink"
    return seen


def test_validate_mark_keeps_every_prefix_as_text(tmp_path: Path) -> None:
    path = _shop_workbook(tmp_path / "shop.xlsx")
    result = CliRunner().invoke(main, ["validate", "--mark", "--now", NOW, str(path)])
    assert result.exit_code in (0, 1), result.output
    seen = assert_inert(path)
    assert seen >= len(DANGEROUS) * len(TEXT_KEYS)
    wb = load_workbook(path)
    messages = [str(c.value) for row in wb[SHEET_FINDINGS].iter_rows() for c in row if c.value]
    assert any(m.lstrip().startswith(("=", "+", "-", "@", "＝")) or "=" in m for m in messages)
    assert all(c.data_type != "f" for row in wb[SHEET_FINDINGS].iter_rows() for c in row)


def test_suggest_writes_no_formula_or_link(tmp_path: Path) -> None:
    path = _shop_workbook(tmp_path / "shop.xlsx")
    result = CliRunner().invoke(main, ["suggest", "--now", NOW, str(path)])
    assert result.exit_code == 0, result.output
    assert "填写了" in result.output
    assert assert_inert(path) >= len(DANGEROUS) * len(TEXT_KEYS)
    # the text the shop typed survives exactly (data, not evaluated, not stripped of its '=')
    wb = load_workbook(path)
    ws = wb[SHEET_COMPLAINTS]
    hr = _header_row(ws)
    col = next(c.column for c in ws[hr] if c.value == FIELD_BY_KEY["description"].zh)
    got = [ws.cell(row=hr + 1 + i, column=col).value for i in range(len(DANGEROUS))]
    # (an XML parser reads a bare CR back as LF; that is the file format, not our writer)
    assert got == [t.replace("\r", "\n") for t in DANGEROUS]


def test_suggest_then_mark_round_trip_stays_inert(tmp_path: Path) -> None:
    path = _shop_workbook(tmp_path / "shop.xlsx")
    runner = CliRunner()
    assert runner.invoke(main, ["suggest", "--now", NOW, str(path)]).exit_code == 0
    assert runner.invoke(main, ["validate", "--mark", "--now", NOW, str(path)]).exit_code in (0, 1)
    assert runner.invoke(main, ["validate", "--mark", "--now", NOW, str(path)]).exit_code in (0, 1)
    assert_inert(path)


def test_merged_workbook_and_reminder_mails_keep_customer_text_as_text(tmp_path):
    """The same dangerous text through the daemon's merge, the scan and the reminder e-mails."""
    import email
    from email import policy

    from complaint_core.rules_book import Person, Rules
    from complaint_core.store import open_store
    from scheduler.api import scan_once, send_due
    from scheduler.transport import EmlFolderTransport
    from sync.api import merge_once
    from tests.support.workbooks import NOW as FIXED_NOW
    from tests.support.workbooks import sample_rows, write_rows

    shop = tmp_path / "shops" / "SH01"
    shop.mkdir(parents=True)
    rows = sample_rows(len(DANGEROUS), seed=3, now=FIXED_NOW)
    for row, bad in zip(rows, DANGEROUS, strict=True):
        row.update(description=bad, customer_name=bad, notes=bad, complaint_id=bad,
                   responsible_person="李娜", responsible_dept="前台", first_contact_at=None)
    write_rows(shop / "SH01.xlsx", rows, shop="SH01")
    merged = tmp_path / "merged.xlsx"
    state = tmp_path / "state.db"
    rules = Rules(staff=(Person("李娜", "前台", "王经理", "li@example.com", "wang@example.com"),
                         Person("王经理", "前台", "王经理", "wang@example.com")))
    merge_once([tmp_path / "shops"], merged, state_url=str(state), now=FIXED_NOW)
    store = open_store(state)
    scan_once(store, now=FIXED_NOW, rules=rules)
    outbox = tmp_path / "outbox"
    send_due(store, EmlFolderTransport(outbox), now=FIXED_NOW)
    from complaint_core.merged.render import render_merged

    render_merged(store, merged, now=FIXED_NOW)
    assert_inert(merged)
    wb = load_workbook(merged)
    texts = {c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    assert {"=1+2", '=HYPERLINK("http://x","y")', "@SUM(A1:A2)"} <= texts
    mails = sorted(outbox.glob("*.eml"))
    assert mails, "the overdue complaints should produce reminder mails"
    for path in mails:
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        html_part = msg.get_body(("html",)).get_content()
        assert "<a " not in html_part and 'HYPERLINK("http' not in html_part
        assert "=HYPERLINK(&quot;http://x&quot;" in html_part or "=1+2" in html_part
