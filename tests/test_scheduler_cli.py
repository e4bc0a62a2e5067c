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


def test_mail_list_and_resend_after_a_lost_reply(tmp_path, smtp_server):
    """A manager lists the mails whose outcome is unknown, checks the mailbox, and resends one."""
    from datetime import datetime

    from scheduler.api import scan_once, send_due
    from scheduler.commands import mail_cmd
    from scheduler.outbox import states
    from tests.test_mail_outbox import RULES, smtp

    url = f"sqlite:///{tmp_path / 'state.db'}"
    fill(open_store(url))
    now = datetime(2026, 3, 2, 15, 0)
    server = smtp_server(mode="drop_after_data")
    scan_once(open_store(url), now=now, rules=RULES)
    assert send_due(open_store(url), smtp(server), now=now).unknown == 2
    cfg = tmp_path / "desk.toml"
    cfg.write_text('[store]\nurl = "state.db"\n', encoding="utf-8")

    r = CliRunner().invoke(mail_cmd, ["list", "--config", str(cfg), "--state", "unknown"])
    assert r.exit_code == 0, r.output
    lines = [ln.split("\t") for ln in r.stdout.splitlines()]
    listed = {ln[3]: ln for ln in lines}
    assert set(listed) == {"zs@example.com", "boss@example.com"}
    assert all(ln[1] == "unknown" and ln[4].endswith("@complaint-desk.local>") for ln in listed.values())
    boss_id = listed["boss@example.com"][0]

    r = CliRunner().invoke(mail_cmd, ["resend", boss_id, "--store", url, "--now", "2026-03-02T16:00"])
    assert r.exit_code == 0 and "已重新排队" in r.output, r.output
    server.handler.mode = "ok"
    assert send_due(open_store(url), smtp(server), now=now).sent == 0   # due from 16:00
    assert send_due(open_store(url), smtp(server), now=now.replace(hour=16)).sent == 1
    assert sorted(states(open_store(url)).values()) == ["sent", "unknown"]
    assert [m["To"] for m in server.messages].count("boss@example.com") == 2   # the one the manager asked for

    r = CliRunner().invoke(mail_cmd, ["resend", boss_id, "--store", url])
    assert r.exit_code == 1 and "sent" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(mail_cmd, ["resend", "999", "--store", url])
    assert r.exit_code == 1 and "999" in r.output
    r = CliRunner().invoke(mail_cmd, ["list", "--store", url, "--config", str(cfg)])
    assert r.exit_code == 2
    r = CliRunner().invoke(mail_cmd, ["list", "--store", url, "--state", "lost"])
    assert r.exit_code == 2 and "unknown" in r.output
    r = CliRunner().invoke(mail_cmd, ["list", "--store", url])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 2
