"""``complaint-desk``: one thin click CLI over the library.

Exit codes (docs/contract.md): 0 ok; 1 findings in the data; 2 bad usage or unreadable input, with
one line naming the file and the reason, never a traceback. Only this layer reads the clock
(``--now`` overrides it), so every rule below stays a pure function.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from complaint_core import __version__
from complaint_core.atomic import refuse_overwrite
from complaint_core.cli_errors import OneLineGroup
from complaint_core.clock import Clock, now_option
from complaint_core.errors import StoreUnavailable
from complaint_core.model import ComplaintTable
from excel_addin.commands import addin
from scheduler.commands import mail_cmd, rules_cmd, run_command, scan_cmd
from sync.commands import sync_cmd

from .wiring import SYNC

log = logging.getLogger("complaint_desk")


NOW_OPTION = now_option()
FORCE_OPTION = click.option("--force", is_flag=True, help="覆盖已有文件 / Overwrite an existing file.")
LANG_OPTION = click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True,
                           help="消息语言 / Message language.")


def _zone(table: ComplaintTable) -> str | None:
    return table.settings.timezone if table.settings is not None else None


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


class Group(OneLineGroup):
    """What only the top level can say in one line (the cards' own errors are one line already,
    complaint_core/cli_errors.py): a closed pipe, an I/O or store failure, and an unexpected
    error, whose full trace goes to a log file."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            fail("已中断 (interrupted)", 130)
        except BrokenPipeError:
            # `validate … | head` stopped reading: Python must not complain again at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            fail("输出管道已关闭，其余输出未显示 (output pipe closed)")
        except OSError as exc:   # what a user can cause: a read-only folder, a full disk, a share gone
            fail(f"{exc.filename or ''}: 文件操作失败 ({exc.strerror or exc})".lstrip(": "))
        except Exception as exc:  # noqa: BLE001 - a shop owner must never see a traceback
            if type(exc).__module__.startswith("sqlalchemy"):
                fail(str(_store_error(exc)))
            log_path = Path(tempfile.gettempdir()) / "complaint-desk-error.log"
            log_path.write_text(traceback.format_exc(), encoding="utf-8")
            fail(f"内部错误 (internal error): {type(exc).__name__}: {exc}；详情见 {log_path}")


def _store_error(exc: Exception) -> StoreUnavailable:
    """A store that cannot be reached, opened or written, as one line naming it."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if "sqlalchemy.dialects" in text or "Could not parse" in text:
        return StoreUnavailable("?", f"地址无法识别，应为 SQLite 文件路径或 postgresql+psycopg://… "
                                     f"(unknown store URL: {text})")
    return StoreUnavailable(getattr(exc, "store_url", None) or "?", f"不可用 (store unavailable: {text})")


def _remember_store(context: Any) -> None:
    # names the store in the one-line message: the driver's own error rarely does
    engine = getattr(context, "engine", None)
    if engine is not None and context.sqlalchemy_exception is not None:
        context.sqlalchemy_exception.store_url = engine.url.render_as_string(hide_password=True)


def _listen_store_errors() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "handle_error", _remember_store):
        event.listen(Engine, "handle_error", _remember_store)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="complaint-desk")
@click.option("-v", "--verbose", is_flag=True, help="输出详细日志 / Verbose logging.")
def main(verbose: bool) -> None:
    """投诉台账 Complaint Desk：检查投诉表、填写处理建议、汇总各门店、提醒逾期。

    Complaint Desk: check complaint workbooks, fill handling steps, merge shops, flag overdue.
    """
    _printable_names()
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _listen_store_errors()


def _printable_names() -> None:
    """A file name that is not UTF-8 (a GBK name on a share mounted without a UTF-8 character
    set) is printed with its odd characters as ``\\udcNN``, in the output and in the log: a
    strict UTF-8 terminal or service log made the one line about it an internal error."""
    import io

    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")


@main.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--shop", default="", help="门店代码 / Shop code written to the settings sheet.")
@LANG_OPTION
@FORCE_OPTION
def template(out: Path, shop: str, lang: str, force: bool) -> None:
    """写出一份新的投诉登记工作簿 / Write a fresh complaint workbook."""
    from complaint_core.template import build_template

    refuse_overwrite(out, force)
    build_template(out, shop_code=shop, lang=lang)
    click.echo(f"已写出 {out}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出 / Print JSON.")
@click.option("--mark", is_flag=True,
              help="在文件中标出问题单元格并写入“校验结果”表 / Mark bad cells and list findings in the file.")
@NOW_OPTION
@LANG_OPTION
def validate(files: tuple[Path, ...], as_json: bool, mark: bool, clock: Clock, lang: str) -> None:
    """检查投诉表的每一行 / Check every row of complaint workbooks."""
    from complaint_core.annotate import mark_file
    from complaint_core.errors import UnreadableWorkbook
    from complaint_core.isolate import check_many_isolated
    from complaint_core.safety import regular_file

    results: list[dict[str, Any]] = []
    worst = 0
    # every table of each file read and checked in a child (two at a time): a hostile file
    # cannot abort us; the answers are printed in the order the files were given
    readable = []
    got: dict[Path, Any] = {}
    for path in files:
        try:
            regular_file(path)   # a pipe or a missing file: said here, no child started
            readable.append(path)
        except UnreadableWorkbook as exc:
            got[path] = exc
    # the clock goes to each child as given: each file's "now" is taken in its own shop's zone
    got.update(check_many_isolated(readable, now=clock, lang=lang))
    for path in files:
        checked = got[path]
        if isinstance(checked, UnreadableWorkbook):
            results.append({"file": str(path), "error": str(checked)})
            worst = 2
            if not as_json:
                click.echo(str(checked), err=True)
            continue
        findings = checked.findings
        if checked.uncovered:
            from complaint_core.holidays import log_uncovered

            log_uncovered(checked.uncovered, str(path))
        if mark:
            try:
                mark_file(path, findings, sheet=checked.sheets, lang=lang)
            except UnreadableWorkbook as exc:   # an xls/ods is checked, but only an xlsx can be marked
                worst = 2
                click.echo(str(exc), err=True)
        results.append({"file": str(path), "findings": [f.as_json() for f in findings]})
        if any(f.severity == "error" for f in findings):
            worst = max(worst, 1)
        if not as_json:
            errors = sum(f.severity == "error" for f in findings)
            click.echo(f"{path}: {checked.rows} 行，{errors} 个错误，{len(findings) - errors} 个提醒"
                       if lang == "zh" else f"{path}: {checked.rows} rows, {errors} errors, "
                       f"{len(findings) - errors} warnings")
            for f in findings:
                click.echo(f"  {f.sheet}!{f.cell or f.row} [{f.severity}] {f.code}: {f.message}")
    if as_json:
        click.echo(json.dumps({"files": results}, ensure_ascii=False, indent=1))
    sys.exit(worst)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@NOW_OPTION
def suggest(file: Path, clock: Clock) -> None:
    """按处理手册填写空白的编号、建议步骤和截止时间 / Fill empty ids, steps and deadlines."""
    from complaint_core.annotate import fill_file
    from complaint_core.isolate import read_tables_isolated
    from complaint_core.reader import read_playbook
    from complaint_core.safety import check_xlsx
    from complaint_core.suggest import fills_for_table

    check_xlsx(file)   # suggestions are written with openpyxl: xlsx/xlsm only, said before any work
    tables = read_tables_isolated(file, timeout=60)
    playbook = read_playbook(file)
    # the shop's own zone: a --now with an offset means that moment in the shop's wall clock
    now = clock.now(_zone(tables[0])) if tables else clock.now()
    fills, written = [], 0
    taken = {v for t in tables for r in t.rows if isinstance(v := r.values.get("complaint_id"), str)}
    for table in tables:   # every complaint table of the workbook, each with its own fills
        table_fills = fills_for_table(table, playbook, now=now, taken=taken)
        taken |= {f.values["complaint_id"] for f in table_fills if "complaint_id" in f.values}
        written += fill_file(file, table, table_fills)
        fills += table_fills
    click.echo(f"{file}: 填写了 {len(fills)} 行、{written} 个单元格 (filled {written} cells in {len(fills)} rows)")


@main.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
def demo(folder: Path | None) -> None:
    """生成三个门店的示例并走一遍全流程 / Run the whole job on three sample shops."""
    from .demo import run_demo

    run_demo(folder or Path("complaint-desk-demo"), echo=click.echo)


main.add_command(addin)

# Each card ships its own commands; the CLI only mounts them (the cards never import each other).
# `run` gets the sync card's watcher explicitly: it runs in the same process as the scheduler.
for _name, _command in (("sync", sync_cmd), ("scan", scan_cmd), ("run", run_command(SYNC)), ("rules", rules_cmd),
                        ("mail", mail_cmd)):
    main.add_command(_command, name=_name)


if __name__ == "__main__":  # pragma: no cover
    main()
