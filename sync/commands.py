"""``complaint-desk sync``: merge shop folders once, or keep the merged workbook up to date."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

import click

from .api import merge_once
from .daemon import Daemon

log = logging.getLogger("complaint_desk.sync")


def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now().replace(microsecond=0)
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise click.BadParameter(f"不是 ISO-8601 时间 (not an ISO-8601 time): {text!r}") from None


@click.command("sync")
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
@click.option("--now", "now_text", metavar="ISO", help="把此时间当作“现在” / Treat as now.")
def sync_cmd(sources: tuple[Path, ...], out: Path, state_url: str | None, poll: bool,
             poll_sources: tuple[Path, ...], mode: str | None, now_text: str | None) -> None:
    """把各门店的投诉工作簿合并为一个 / Merge every shop's workbook into one."""
    if not sources and not poll_sources:
        raise click.UsageError("请至少指定一个 --source 或 --poll-source (give a shop folder)")
    if mode is None:
        raise click.UsageError("请指定 --once 或 --watch (give --once or --watch)")
    if mode == "once":
        # how a folder is watched does not matter to a single merge: every folder is read
        _once(list(dict.fromkeys([*sources, *poll_sources])), out, state_url, _now(now_text))
    else:
        _watch(list(sources), list(poll_sources), out, state_url, poll, now_text)


def _once(sources: list[Path], out: Path, state_url: str | None, now: datetime) -> None:
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
    if report.failed or report.unavailable or report.write_error:
        sys.exit(1)


def _watch(sources: list[Path], poll_sources: list[Path], out: Path, state_url: str | None, poll: bool,
           now_text: str | None) -> None:
    clock = (lambda: _now(now_text)) if now_text else (lambda: datetime.now().replace(microsecond=0))
    daemon = Daemon(sources, out, state_url, poll=poll, poll_sources=poll_sources, clock=clock)
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
            pass
    finally:
        daemon.stop()
