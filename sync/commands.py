"""``complaint-desk sync``: merge shop folders once, or keep the merged workbook up to date."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

import click

from complaint_core.cli_errors import OneLineCommand, OneLineError
from complaint_core.clock import Clock, now_option

from .api import merge_once
from .daemon import Daemon

log = logging.getLogger("complaint_desk.sync")


@click.command("sync", cls=OneLineCommand)
@click.option("--source", "sources", multiple=True,
              type=click.Path(file_okay=False, path_type=Path), help="门店文件夹 / Shop folder (repeatable).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="合并工作簿 / Merged workbook.")
@click.option("--state", "state_url", default=None,
              help="存储：默认合并工作簿旁的 SQLite；或 postgresql+psycopg://… / Store URL.")
@click.option("--poll", is_flag=True, help="所有文件夹都轮询（网络共享/NAS）/ Poll every folder (network shares).")
@click.option("--poll-source", "poll_sources", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="用轮询监视的门店文件夹（NAS/SMB 共享），其余用系统事件 / "
                   "A shop folder watched by polling (NAS/SMB share); repeatable.")
@click.option("--once", "mode", flag_value="once", help="合并一次后退出 / Merge once and exit.")
@click.option("--watch", "mode", flag_value="watch", help="持续监视 / Keep watching.")
@now_option()
@click.option("--feedback", is_flag=True, help="为每个门店工作簿写 _反馈/<名>_反馈.xlsx / "
                                                "Write each shop a feedback workbook in its folder's _反馈.")
def sync_cmd(sources: tuple[Path, ...], out: Path, state_url: str | None, poll: bool,
             poll_sources: tuple[Path, ...], mode: str | None, clock: Clock, feedback: bool) -> None:
    """把各门店的投诉工作簿合并为一个 / Merge every shop's workbook into one."""
    if not sources and not poll_sources:
        raise OneLineError("请至少指定一个 --source 或 --poll-source (give a shop folder)")
    if mode is None:
        raise OneLineError("请指定 --once 或 --watch (give --once or --watch)")
    if mode == "once":
        # how a folder is watched does not matter to a single merge: every folder is read
        _once(list(dict.fromkeys([*sources, *poll_sources])), out, state_url, clock.now(), feedback)
    else:
        _watch(list(sources), list(poll_sources), out, state_url, poll, clock, feedback)


def _once(sources: list[Path], out: Path, state_url: str | None, now: datetime, feedback: bool = False) -> None:
    tty = sys.stderr.isatty()
    count = [0]

    def progress(path: Path) -> None:
        count[0] += 1
        if tty:
            click.echo(f"\r已检查 {count[0]} 个文件… {path.name[:40]:<40}", err=True, nl=False)

    report = merge_once(sources, out, state_url=state_url, now=now, progress=progress)
    if tty and count[0]:
        click.echo("", err=True)
    for r in report.read:
        click.echo(f"已读取 {r.path}: {r.rows} 行")
    for r in report.skipped:
        if r.outcome == "conflict_copy":
            click.echo(f"冲突副本（未合并）{r.path}")
    for r in report.failed:
        click.echo(f"读取失败 {r.path}: {r.reason}", err=True)
    for r in report.unavailable:   # rows kept as they were; a manager should look at the share
        click.echo(f"不可用 {r.path}: {r.reason}", err=True)
    if report.written:
        click.echo(f"已写入 {report.written}: {report.rows} 条投诉，{report.conflicts} 处冲突，"
                   f"用时 {report.seconds:.1f} 秒")
    if report.write_error:
        click.echo(f"写入失败（下次重试）: {report.write_error}", err=True)
    if feedback:
        from .feedback import write_feedback

        fed = write_feedback(sources, now=now, out=out)
        click.echo(f"反馈文件：更新 {len(fed.written)} 个，未变 {len(fed.unchanged)} 个")
        for path, reason in fed.failed:
            click.echo(f"反馈文件未写入 {path}: {reason}", err=True)
    if report.failed or report.unavailable or report.write_error:
        sys.exit(1)


def _watch(sources: list[Path], poll_sources: list[Path], out: Path, state_url: str | None, poll: bool,
           clock: Clock, feedback: bool = False) -> None:
    daemon = Daemon(sources, out, state_url, poll=poll, poll_sources=poll_sources, clock=clock.now,
                    feedback=feedback)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    daemon.start()
    # one line per folder, so whoever installs it sees which share is polled
    for folder in daemon.sources:
        click.echo(f"监视 {folder}：{daemon.watchers.describe(folder)}")
    click.echo(f"正在监视 {len(daemon.sources)} 个文件夹 → {out}（Ctrl+C 退出）")
    try:
        while not stop.wait(1):
            if not daemon.alive():
                # the worker is gone (it never stops on an error of its own): end with an error
                # so that the service manager starts a copy that merges again
                click.echo("合并线程已意外停止，退出以便服务重新启动 (the merging worker stopped)", err=True)
                raise SystemExit(1)
    finally:
        daemon.stop()
