"""The CLI contract of docs/contract.md: exit codes, JSON shape, one-line errors, --now."""

from __future__ import annotations

import json
import subprocess
import sys

import click
from click.testing import CliRunner

from complaint_desk.cli import main
from tests.support.libreoffice import libreoffice_opens
from tests.support.workbooks import NOW, inject_defects, sample_rows, write_rows

NOW_ISO = NOW.isoformat()


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_validate_json_finds_exactly_the_broken_cells(tmp_path):
    rows = sample_rows(20, seed=21, now=NOW)
    expected = inject_defects(rows, now=NOW)
    path = write_rows(tmp_path / "shop.xlsx", rows, shop="SH01")
    result = run("validate", "--json", "--now", NOW_ISO, path)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    findings = doc["files"][0]["findings"]
    assert {(f["row"], f["code"]) for f in findings} == {(i + 2, code) for i, code in expected.items()}
    assert set(findings[0]) == {"sheet", "row", "cell", "field", "severity", "code", "message"}


def test_clean_file_exits_0(tmp_path):
    path = write_rows(tmp_path / "ok.xlsx", sample_rows(15, seed=22, now=NOW), shop="SH01")
    result = run("validate", "--now", NOW_ISO, path)
    assert result.exit_code == 0, result.output


def test_unreadable_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a workbook")
    proc = subprocess.run([sys.executable, "-m", "complaint_desk", "validate", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and str(bad) in proc.stderr and "Traceback" not in proc.stderr


def test_validate_json_reports_unreadable_files_alongside(tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"")
    good = write_rows(tmp_path / "ok.xlsx", sample_rows(3, seed=23, now=NOW), shop="SH01")
    result = run("validate", "--json", "--now", NOW_ISO, good, bad)
    assert result.exit_code == 2
    files = json.loads(result.stdout)["files"]
    assert files[0]["findings"] == [] and "空文件" in files[1]["error"]


def test_bad_usage_exits_2():
    assert run("validate").exit_code == 2
    assert run("validate", "--now", "yesterday", "x.xlsx").exit_code == 2


def test_mark_and_suggest_write_the_file(tmp_path):
    rows = sample_rows(8, seed=24, now=NOW)
    inject_defects(rows, now=NOW)
    for r in rows:
        r.pop("suggested_steps", None)
    path = write_rows(tmp_path / "shop.xlsx", rows, shop="SH01")
    assert run("suggest", "--now", NOW_ISO, path).exit_code == 0
    assert run("validate", "--mark", "--now", NOW_ISO, "--lang", "en", path).exit_code == 1
    from openpyxl import load_workbook

    wb = load_workbook(path)
    assert "校验结果" in wb.sheetnames and wb["校验结果"]["A1"].value == "Sheet"
    libreoffice_opens(path)


def test_template_command_both_languages(tmp_path):
    assert run("template", tmp_path / "zh.xlsx", "--shop", "SH05").exit_code == 0
    assert run("template", tmp_path / "en.xlsx", "--shop", "SH05", "--lang", "en").exit_code == 0
    from openpyxl import load_workbook

    assert load_workbook(tmp_path / "en.xlsx").worksheets[0]["A1"].value == "Complaint ID"


def test_demo_runs_in_seconds_and_is_reproducible(tmp_path):
    import time

    t = time.perf_counter()
    result = run("demo", tmp_path / "demo")
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - t < 30
    assert "SH01" in result.output and "SH03" in result.output
    shops = sorted((tmp_path / "demo" / "shops").rglob("*.xlsx"))
    assert len(shops) == 3
    again = run("demo", tmp_path / "demo2")
    assert again.output.replace("demo2", "demo") == result.output
    merged = tmp_path / "demo" / "merged" / "门店投诉汇总.xlsx"
    assert merged.is_file(), result.output
    assert len(list((tmp_path / "demo" / "outbox").glob("*.eml"))) > 0, result.output
    for path in [*shops, merged]:
        libreoffice_opens(path)


def test_the_cards_commands_are_mounted():
    assert {"demo", "template", "validate", "suggest", "sync", "scan", "run", "rules",
            "addin"} <= set(main.commands)


def test_every_command_has_help():
    for name in main.commands:
        result = run(name, "--help")
        assert result.exit_code == 0 and "Usage" in result.output


def test_python_dash_m_works():
    proc = subprocess.run([sys.executable, "-m", "complaint_desk", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "complaint-desk" in proc.stdout


def test_unexpected_error_is_one_line_and_a_log_file(tmp_path, monkeypatch):
    from complaint_desk.cli import Group

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    @click.group(cls=Group)
    def cli():
        pass

    @cli.command()
    def boom():
        raise RuntimeError("磁盘坏了")

    result = CliRunner().invoke(cli, ["boom"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "磁盘坏了" in lines[0] and "Traceback" not in result.output
    log = tmp_path / "complaint-desk-error.log"
    assert str(log) in lines[0] and "RuntimeError" in log.read_text(encoding="utf-8")
