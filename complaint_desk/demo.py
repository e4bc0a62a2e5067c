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

from .demo_data import EMAILS, MOBILES, STAFF, inject_defects, sample_rows, write_rows

log = logging.getLogger(__name__)

DEMO_NOW = datetime(2026, 11, 20, 10, 0)
SHOPS = (("SH01", "人民路店", 30), ("SH02", "滨江店", 24), ("SH03", "大学城店", 18))


def run_demo(folder: Path, *, echo: Callable[[str], object] = print, now: datetime = DEMO_NOW) -> dict[str, dict[str, int]]:
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
    _merge_and_scan(folder, now=now, echo=echo)
    echo("")
    echo(f"示例文件夹 Demo folder: {folder.resolve()}")
    echo("  shops/*/*.xlsx  各门店投诉登记（红色=错误，黄色=提醒，见“校验结果”表）")
    echo("                  shop workbooks: red = error, yellow = warning, see the 校验结果 sheet")
    echo("  merged/门店投诉汇总.xlsx  主管看的汇总表（汇总、全部投诉、逾期、处罚、案例手册、冲突、来源）")
    echo("                  the managers' merged workbook (summary, all, overdue, penalties, case book, sources)")
    echo("  merged/处罚与提醒规则.xlsx  处罚、提醒时间和人员邮箱 / penalty rules, reminder times, staff")
    echo("  outbox/         逾期提醒和预警上报邮件（.eml，未真正发送） / reminder and escalation mails (.eml, not sent)")
    echo("  outbox/<群名>/  各群机器人将收到的消息（.json，未设置 Webhook 环境变量，未真正发送）")
    echo("                  what each group robot would receive (.json: its webhook variable is not set)")
    echo("  desk.toml       示例配置：complaint-desk run --config desk.toml --once（设置 CD_DEMO_BOT_* 后真正发到群里）")
    return summary


def _merge_and_scan(folder: Path, *, now: datetime, echo: Callable[[str], object]) -> None:
    """Merge the shops and run the scheduler's chain (the CLI wires the cards; they never import
    each other)."""
    from scheduler.daemon import run_once
    from sync.api import merge_once

    merged_out = folder / "merged" / "门店投诉汇总.xlsx"
    merged_out.parent.mkdir(parents=True, exist_ok=True)
    state_url = f"sqlite:///{(folder / 'merged' / 'state.db').resolve().as_posix()}"
    sources = sorted(p for p in (folder / "shops").iterdir() if p.is_dir())
    report = merge_once(sources, merged_out, state_url=state_url, now=now)
    echo(f"汇总 Merged: {report.rows} 条 rows, {len(report.read)} 个文件 files, "
         f"{report.conflicts} 个冲突 conflicts -> {merged_out}")
    log.info("merge report: %s", report)
    outbox = folder / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    _demo_rules(folder / "merged" / "处罚与提醒规则.xlsx")
    config = _demo_config(folder / "desk.toml")
    # The same one cycle a shop's Task Scheduler runs (`run --once`): scan, escalation
    # alerts, digests, mails and robot posts; the shops were merged just above.
    cycle = run_once(config, None, now=now)
    mails = sorted(outbox.glob("*.eml"))
    alerts = sum(1 for m in mails if _alert(m))
    posts = sorted(outbox.glob("*/*.json"))
    echo(f"扫描、处罚、汇总、提醒 Scan, penalties, summary, reminders: {len(mails)} 封邮件 mails"
         f"（其中预警上报 {alerts} 封 escalation alerts） -> {outbox}")
    echo(f"群机器人 Group robots: {len(posts)} 条消息 posts -> "
         + "、".join(f"{d.name} {len(list(d.glob('*.json')))}" for d in sorted(p for p in outbox.iterdir() if p.is_dir())))
    log.info("demo cycle report: %s", cycle)


def _alert(path: Path) -> bool:
    import email
    import email.policy

    return "预警上报" in str(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["Subject"])


# The demo chain's robots: one group per shop on each platform, and the managers' group. Their
# webhook URLs are read from these variables; unset, each post is written as a .json file.
DEMO_CONFIG = """# 示例配置 Demo config: complaint-desk run --config desk.toml --once
[store]
url = "merged/state.db"
merged = "merged/门店投诉汇总.xlsx"

[rules]
path = "merged/处罚与提醒规则.xlsx"

[scan]
timezone = "Asia/Shanghai"

[mail]
outbox_dir = "outbox"       # no host: mails are written as .eml files here

[sync]
sources = ["shops/SH01", "shops/SH02", "shops/SH03"]

[[bot]]
name = "人民路店群"
kind = "wecom"
url_env = "CD_DEMO_BOT_SH01"
shops = ["SH01"]

[[bot]]
name = "滨江店群"
kind = "dingtalk"
url_env = "CD_DEMO_BOT_SH02"
secret_env = "CD_DEMO_BOT_SH02_SECRET"
shops = ["SH02"]

[[bot]]
name = "大学城店群"
kind = "feishu"
url_env = "CD_DEMO_BOT_SH03"
secret_env = "CD_DEMO_BOT_SH03_SECRET"
shops = ["SH03"]

[[bot]]
name = "主管群"
kind = "wecom"
url_env = "CD_DEMO_BOT_BOSS"
shops = []
"""


def _demo_config(path: Path) -> Path:
    from complaint_core.atomic import atomic_write

    with atomic_write(path) as tmp:
        Path(tmp).write_text(DEMO_CONFIG, encoding="utf-8")
    return path


def _demo_rules(path: Path) -> Path:
    """The scheduler's rules workbook with the demo staff, so reminders have someone to go to."""
    from complaint_core.rules_book import DEFAULT, Person, Rules, build_rules_template

    # 扣款基数: the monthly bonus the loss tiers take their share of (demo figures)
    staff = [Person(name, dept, head, f"{EMAILS[name]}@example.com", mobile=MOBILES[name], base=3000)
             for dept, name, head in STAFF]
    heads = sorted({head for _dept, _name, head in STAFF})
    staff += [Person(head, "门店管理", "", f"{EMAILS[head]}@example.com", mobile=MOBILES[head], base=5000)
              for head in heads]
    build_rules_template(path, Rules(penalties=DEFAULT.penalties,
                                     reminder_times=DEFAULT.reminder_times, staff=tuple(staff)))
    return path

