"""``complaint-desk demo``: the whole job on three sample shops at a fixed clock.

Seeded data and a fixed "now" make every run identical, so a shop owner can compare what
they see with the docs, and the tests can check the numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from complaint_core.annotate import fill_file, mark_file
from complaint_core.reader import read_playbook, read_workbook
from complaint_core.suggest import fills_for_table
from complaint_core.validate import validate_table

from .demo_data import inject_defects, sample_rows, write_rows

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
    echo("")
    echo(f"示例文件夹 Demo folder: {folder.resolve()}")
    echo("  shops/*/*.xlsx  各门店投诉登记（红色=错误，黄色=提醒，见“校验结果”表）")
    echo("                  shop workbooks: red = error, yellow = warning, see the 校验结果 sheet")
    return summary
