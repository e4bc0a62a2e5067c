"""Click commands the CLI mounts: rules, scan, run."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from complaint_core.errors import ComplaintDeskError


def _fail(e: Exception) -> None:
    click.echo(str(e), err=True)
    raise SystemExit(2)


@click.command("rules")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def rules_cmd(out: Path) -> None:
    """写出规则工作簿模板 / write the rules workbook template."""
    from complaint_core.rules_book import build_rules_template
    build_rules_template(out)
    click.echo(f"已生成规则工作簿：{out}")


@click.command("scan")
@click.option("--state", "state", required=True, help="store URL or SQLite path")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--now", "now", default=None, help="ISO time to scan as of (default: the clock)")
@click.option("--rules", "rules_path", default=None, type=click.Path(exists=True, dir_okay=False))
def scan_cmd(state: str, out: Path, now: str | None, rules_path: str | None) -> None:
    """逾期扫描、处罚、汇总 / overdue scan, penalties, summary."""
    from complaint_core.merged.render import render_merged
    from complaint_core.rules_book import DEFAULT, load_rules
    from complaint_core.store import open_store

    from .api import scan_once, sheet_providers

    try:
        clock = datetime.fromisoformat(now) if now else datetime.now().replace(microsecond=0)
    except ValueError:
        _fail(ValueError(f"--now {now!r}: 时间格式应为 ISO，例如 2026-03-02T15:00"))
    try:
        rules = load_rules(rules_path) if rules_path else DEFAULT
        store = open_store(state)
        rep = scan_once(store, now=clock, rules=rules)
        render_merged(store, out, now=clock, providers=sheet_providers(rules))
    except ComplaintDeskError as e:
        _fail(e)
    click.echo(f"投诉 {rep.records} 条，需关注 {rep.flagged} 条（逾期 {rep.overdue}），新处罚 {rep.new_penalties} 条，"
               f"新邮件 {rep.queued_mails} 封 -> {out}")


@click.command("run")
@click.option("--config", "config", required=True, type=click.Path(exists=True, dir_okay=False))
def run_cmd(config: str) -> None:
    """后台运行：定时扫描和提醒 / run the scheduler daemon."""
    from .daemon import run
    try:
        run(config, click.get_current_context().obj or ())
    except ComplaintDeskError as e:
        _fail(e)
