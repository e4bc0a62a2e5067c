"""``complaint-desk demo``: the whole job on three sample shops at a fixed clock.

Seeded data and a fixed "now" make every run identical, so a shop owner can compare what
they see with the docs, and the tests can check the numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from complaint_core.annotate import fill_file, mark_file
from complaint_core.reader import read_playbook, read_workbook
from complaint_core.suggest import fills_for_table
from complaint_core.validate import validate_table

from .demo_data import EMAILS, STAFF, inject_defects, sample_rows, write_rows

log = logging.getLogger(__name__)

DEMO_NOW = datetime(2026, 11, 20, 10, 0)
SHOPS = (("SH01", "人民路店", 30), ("SH02", "滨江店", 24), ("SH03", "大学城店", 18))


def run_demo(folder: Path, *, echo: Callable[[str], object] = print, now: datetime = DEMO_NOW) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict[str, int]] = {}
    for seed, (code, name, n) in enumerate(SHOPS, start=1):
        shop_dir = folder / "shops" / code
        shop_dir.mkdir(parents=True, exist_ok=True)
        rows = sample_rows(n, seed=seed, now=now, shop=code)
        inject_defects(rows, now=now)
        path = write_rows(shop_dir / f"{code}_{name}_投诉登记.xlsx", rows, shop=code)
        table = read_workbook(path)
        fills = fills_for_table(table, read_playbook(path), now=now)
        fill_file(path, table, fills)
        table = read_workbook(path)
        findings = validate_table(table, now=now)
        mark_file(path, findings, sheet=table.sheet)
        errors = sum(f.severity == "error" for f in findings)
        summary[code] = {"rows": len(table.rows), "errors": errors, "warnings": len(findings) - errors,
                         "filled": len(fills)}
        echo(f"{code} {name}: {len(table.rows)} 条投诉，{errors} 个错误，{len(findings) - errors} 个提醒，"
             f"{len(fills)} 行已填写建议 -> {path}")
    merged = _merge_and_scan(folder, now=now, echo=echo)
    echo("")
    echo(f"示例文件夹 Demo folder: {folder.resolve()}")
    echo("  shops/*/*.xlsx  各门店投诉登记（红色=错误，黄色=提醒，见“校验结果”表）")
    echo("                  shop workbooks: red = error, yellow = warning, see the 校验结果 sheet")
    if merged:
        echo("  merged/门店投诉汇总.xlsx  主管看的汇总表（汇总、全部投诉、逾期、处罚、案例手册、冲突、来源）")
        echo("                  the managers' merged workbook (summary, all, overdue, penalties, case book, sources)")
        echo("  merged/处罚与提醒规则.xlsx  处罚、提醒时间和人员邮箱 / penalty rules, reminder times, staff")
    if (folder / "outbox").is_dir():
        echo("  outbox/         逾期提醒邮件（.eml，未真正发送） / reminder mails (.eml, not sent)")
    return summary


def _merge_and_scan(folder: Path, *, now: datetime, echo: Callable[[str], object]) -> bool:
    """Merge the shops and run the scheduler's chain, when those cards are installed.

    The CLI wires the cards (they never import each other); a bare core install still gets
    the per-shop part of the demo.
    """
    if not _available("sync.api"):
        return False
    import importlib

    sync_api = importlib.import_module("sync.api")
    merged_out = folder / "merged" / "门店投诉汇总.xlsx"
    merged_out.parent.mkdir(parents=True, exist_ok=True)
    state_url = f"sqlite:///{(folder / 'merged' / 'state.db').resolve().as_posix()}"
    sources = sorted(p for p in (folder / "shops").iterdir() if p.is_dir())
    report = sync_api.merge_once(sources, merged_out, state_url=state_url, now=now)
    echo(f"汇总 Merged: {getattr(report, 'rows', '?')} 条 rows, {len(getattr(report, 'read', []))} 个文件 files, "
         f"{getattr(report, 'conflicts', 0)} 个冲突 conflicts -> {merged_out}")
    log.info("merge report: %s", report)
    if _available("scheduler.api"):
        scheduler_api = importlib.import_module("scheduler.api")
        outbox = folder / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        rules_path = _demo_rules(folder / "merged" / "处罚与提醒规则.xlsx")
        chain = scheduler_api.demo_chain(state_url, merged_out, now=now, outbox_dir=outbox,
                                         rules_path=rules_path)
        mails = sorted(outbox.glob("*.eml"))
        echo(f"扫描、处罚、汇总、提醒 Scan, penalties, summary, reminders: {len(mails)} 封邮件 mails -> {outbox}")
        log.info("demo chain report: %s", chain)
    return True


def _demo_rules(path: Path) -> Path:
    """The scheduler's rules workbook with the demo staff, so reminders have someone to go to."""
    from complaint_core.rules_book import DEFAULT, Person, Rules, build_rules_template

    # 扣款基数: the monthly bonus the loss tiers take their share of (demo figures)
    staff = [Person(name, dept, head, f"{EMAILS[name]}@example.com", base=3000) for dept, name, head in STAFF]
    heads = sorted({head for _dept, _name, head in STAFF})
    staff += [Person(head, "门店管理", "", f"{EMAILS[head]}@example.com", base=5000) for head in heads]
    build_rules_template(path, Rules(settings=DEFAULT.settings, penalties=DEFAULT.penalties,
                                     reminder_times=DEFAULT.reminder_times, staff=tuple(staff)))
    return path


def _available(module_name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False
