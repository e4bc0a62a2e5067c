"""The click commands: rules template, scan at a fixed clock, clear errors."""

from __future__ import annotations

from click.testing import CliRunner
from openpyxl import load_workbook

import scheduler.api  # noqa: F401
from complaint_core.store import open_store
from scheduler.commands import rules_cmd, scan_cmd
from tests.test_mail_outbox import fill


def test_rules_then_scan(tmp_path):
    r = CliRunner().invoke(rules_cmd, [str(tmp_path / "rules.xlsx")])
    assert r.exit_code == 0 and (tmp_path / "rules.xlsx").exists()
    url = f"sqlite:///{tmp_path / 'state.db'}"
    fill(open_store(url))
    out = tmp_path / "m.xlsx"
    args = ["--state", url, "--out", str(out), "--now", "2026-03-02T15:00", "--rules", str(tmp_path / "rules.xlsx")]
    r = CliRunner().invoke(scan_cmd, args)
    assert r.exit_code == 0, r.output
    assert "逾期 2" in r.output and "新处罚 2" in r.output
    assert "逾期" in load_workbook(out).sheetnames
    r = CliRunner().invoke(scan_cmd, args)
    assert "新处罚 0" in r.output


def test_bad_now_is_one_line(tmp_path):
    r = CliRunner().invoke(scan_cmd, ["--state", str(tmp_path / "s.db"), "--out", str(tmp_path / "m.xlsx"),
                                      "--now", "yesterday"])
    assert r.exit_code == 2 and "--now" in r.output and "Traceback" not in r.output
