"""Click commands the CLI mounts: rules, scan, run, mail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from complaint_core.cli_errors import OneLineCommand, OneLineError, OneLineGroup
from complaint_core.clock import Clock, now_option

if TYPE_CHECKING:
    from complaint_core.store import Store

    from .daemon import OnceReport, SyncHook


@click.command("rules", cls=OneLineCommand)
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="覆盖已有文件 / Overwrite an existing file.")
def rules_cmd(out: Path, force: bool) -> None:
    """写出规则工作簿模板 / write the rules workbook template."""
    from complaint_core.atomic import refuse_overwrite
    from complaint_core.rules_book import build_rules_template

    refuse_overwrite(out, force)
    build_rules_template(out)
    click.echo(f"已生成规则工作簿：{out}")


@click.command("scan", cls=OneLineCommand)
@click.option("--state", "state", required=True, help="store URL or SQLite path")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@now_option()
@click.option("--rules", "rules_path", default=None, type=click.Path(exists=True, dir_okay=False))
def scan_cmd(state: str, out: Path, clock: Clock, rules_path: str | None) -> None:
    """逾期扫描、处罚、汇总 / overdue scan, penalties, summary."""
    from complaint_core.merged.render import render_merged
    from complaint_core.rules_book import load_rules
    from complaint_core.store import open_existing_store

    from .api import scan_once

    now = clock.now()
    rules = load_rules(rules_path) if rules_path else None
    store = open_existing_store(state)
    rep = scan_once(store, now=now, rules=rules)
    render_merged(store, out, now=now)
    click.echo(f"投诉 {rep.records} 条，需关注 {rep.flagged} 条（逾期 {rep.overdue}），新处罚 {rep.new_penalties} 条，"
               f"新邮件 {rep.queued_mails} 封 -> {out}")


def run_command(sync: SyncHook | None = None) -> click.Command:
    """The ``run`` command. ``sync`` watches the shop folders beside the scheduler (and merges
    them once for ``--once``): the CLI passes ``complaint_desk.wiring.SYNC``, since the scheduler
    never imports the sync card itself."""

    @click.command("run", cls=OneLineCommand)
    @click.option("--config", "config", required=True, type=click.Path(exists=True, dir_okay=False))
    @click.option("--once", is_flag=True,
                  help="只运行一轮（合并门店文件夹、扫描、发送邮件和机器人消息）后退出，供任务计划程序或 cron 调用；"
                       "全部发出时退出码 0，有未能发出的为 1 / one cycle (merge, scan, send) and exit: 0, or 1 when "
                       "something could not be sent")
    @now_option("--once 这一轮按此时间运行 / ISO time the --once cycle runs as of (default: the clock)")
    def run_cmd(config: str, once: bool, clock: Clock) -> None:
        """后台运行：定时扫描和提醒 / run the scheduler daemon (or one cycle with --once)."""
        if not once:
            if clock.moment is not None:
                raise OneLineError("--now 只能与 --once 一起使用 / --now needs --once")
            from .daemon import run

            raise SystemExit(run(config, sync))
        from .daemon import run_once

        rep = run_once(config, sync, now=clock)
        _echo_once(rep)
        raise SystemExit(0 if rep.ok else 1)

    return run_cmd


run_cmd = run_command()   # without the folder watcher (the CLI mounts run_command(SYNC))


def _echo_once(rep: OnceReport) -> None:
    if rep.merged is not None:
        click.echo(f"合并：读取 {rep.merged.read} 个文件")
        for line in rep.merged.problems:
            click.echo(f"  {line}", err=True)
    s, d = rep.scan, rep.send
    click.echo(f"扫描：投诉 {s.records} 条，需关注 {s.flagged} 条（逾期 {s.overdue}），新处罚 {s.new_penalties} 条，"
               f"新邮件 {s.queued_mails} 封，新机器人消息 {s.queued_posts} 条")
    click.echo(f"发送：已发出 {d.sent}，稍后重试 {d.retry}，失败 {d.failed}，结果未知 {d.unknown}"
               + (f"，按每分钟限额延后 {d.deferred}" if d.deferred else ""))
    for line in d.notes:
        click.echo(line)
    for line in d.errors:
        click.echo(f"未发出：{line}", err=True)
    if d.unknown:
        click.echo("有结果未知的消息：complaint-desk mail list --state unknown 查看，核对后用 mail resend 重发",
                   err=True)
    if rep.render_error:
        click.echo(f"汇总工作簿未写入（下次重试）：{rep.render_error}", err=True)


def _mail_store(config: str | None, store_url: str | None) -> Store:
    from complaint_core.store import open_existing_store

    from .config import load_config

    if bool(config) == bool(store_url):
        raise OneLineError("请给出 --config 或 --store 其中之一 / give --config or --store")
    store = open_existing_store(load_config(config)["store"]["url"] if config else str(store_url))
    return store


CONFIG_OPTION = click.option("--config", "config", default=None, type=click.Path(exists=True, dir_okay=False),
                             help="daemon config (TOML); its store is used")
STORE_OPTION = click.option("--store", "store_url", default=None, help="store URL or SQLite path")


@click.group("mail", cls=OneLineGroup)
def mail_cmd() -> None:
    """提醒邮件发件箱：查看、人工重发 / the reminder outbox: list, resend after checking."""


@mail_cmd.command("list")
@CONFIG_OPTION
@STORE_OPTION
@click.option("--state", "state", default=None, metavar="STATE",
              help="pending / sending / in_data / sent / failed / unknown (unknown: the server may have it, "
                   "check before resending)")
def mail_list_cmd(config: str | None, store_url: str | None, state: str | None) -> None:
    """列出发件箱中的邮件 / list the outbox (newest first)."""
    from .outbox import STATES, listing

    if state and state not in STATES:
        raise OneLineError(f"--state {state!r}: 应为 {' / '.join(STATES)}")
    rows = listing(_mail_store(config, store_url), state)
    for r in rows:
        when = r["sent_at"] or r["created_at"]
        # a robot post names its group robot, so a manager knows to check the chat group, not a mailbox
        to = f"机器人:{r['recipient']}" if r.get("channel") == "bot" else r["recipient"]
        click.echo(f"{r['id']}\t{r['state']}\t{when:%Y-%m-%d %H:%M}\t{to}\t{r['message_id']}\t"
                   f"{r['subject']}" + (f"\t{r['last_error']}" if r["last_error"] and r["state"] != "sent" else ""))
    click.echo(f"共 {len(rows)} 条" + (f"（{state}）" if state else ""), err=True)


@mail_cmd.command("resend")
@click.argument("mail_id", type=int)
@CONFIG_OPTION
@STORE_OPTION
@now_option("邮件从此时间起重新到期 / ISO time the mail is due again from (default: the clock)")
def mail_resend_cmd(mail_id: int, config: str | None, store_url: str | None, clock: Clock) -> None:
    """核对后重发一封 unknown/failed 邮件 / queue an unknown or failed mail again after checking."""
    from .outbox import resend

    done = resend(_mail_store(config, store_url), mail_id, now=clock.now())
    if done.state is None:
        click.echo(f"发件箱中没有编号为 {mail_id} 的邮件", err=True)
        raise SystemExit(1)
    if not done.queued:
        click.echo(f"邮件 {mail_id} 的状态是 {done.state}，只有 unknown 或 failed 的邮件可以重发", err=True)
        raise SystemExit(1)
    click.echo(f"邮件 {mail_id}（原状态 {done.state}）已重新排队，后台进程下次发送时发出")
