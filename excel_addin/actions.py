"""What each ribbon button does, on any ``WorkbookPort``: the same engine as the CLI.

Each handler reads the whole table in one range read, computes in Python with
complaint_core, and writes each changed column back in one range write. Marks are values
(2 = error, 1 = warning) written in one block into the hidden marks sheet; the template's
conditional formats colour the table from it. So colouring 10 or 10,000 bad cells costs the
same calls, and nothing needs Windows-only COM: Excel for Mac colours them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from complaint_core import __version__
from complaint_core.errors import BadSetting, NotAComplaintWorkbook
from complaint_core.feedback import FEEDBACK_DIR, feedback_name
from complaint_core.findings import FINDINGS_HEADER
from complaint_core.holidays import SHEET_HOLIDAYS, holidays_from_rows
from complaint_core.ids import next_ids
from complaint_core.model import ComplaintTable, Finding
from complaint_core.playbook import DEFAULT_PLAYBOOK, Playbook, playbook_from_rows
from complaint_core.reader import complaint_sheet_order, table_from_grid
from complaint_core.schema import (
    FIELD_BY_KEY,
    FILLED_KEYS,
    SHEET_FINDINGS,
    SHEET_MARKS,
    SHEET_PLAYBOOK,
    SHEET_SETTINGS,
)
from complaint_core.settings import DEFAULTS, Settings, settings_from_rows
from complaint_core.suggest import fills_for_table
from complaint_core.validate import validate_table

from .port import WorkbookPort

MARKS_SHEET = SHEET_MARKS
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"




def load_table(port: WorkbookPort, names: list[str] | None = None) -> ComplaintTable:
    names = port.sheet_names() if names is None else names
    settings = _settings(port) if SHEET_SETTINGS in names else DEFAULTS
    if SHEET_HOLIDAYS in names:
        # the shop's own holidays and 调休, as the CLI and the daemon read them
        grid, _r, _c = port.read_used_range(SHEET_HOLIDAYS)
        settings = settings.with_(holidays=holidays_from_rows(grid, sheet=SHEET_HOLIDAYS))
    shop = settings.shop_code or None
    for name in complaint_sheet_order(names):
        grid, first_row, first_col = port.read_used_range(name)
        try:
            table = table_from_grid(grid, sheet=name, shop_code=shop, first_row=first_row, first_col=first_col)
        except NotAComplaintWorkbook:
            continue
        table.settings = settings  # the shop's deadlines and business hours, as the CLI reads them
        return table
    raise NotAComplaintWorkbook("当前工作簿", "没有找到投诉登记表（需要 投诉编号、受理时间、客户姓名、投诉内容 等表头）")


def _settings(port: WorkbookPort) -> Settings:
    grid, _r, _c = port.read_used_range(SHEET_SETTINGS)
    return settings_from_rows(grid, sheet=SHEET_SETTINGS)


def _playbook(port: WorkbookPort) -> Playbook:
    if SHEET_PLAYBOOK not in port.sheet_names():
        return DEFAULT_PLAYBOOK
    grid, _r, _c = port.read_used_range(SHEET_PLAYBOOK)
    return playbook_from_rows(grid)


def _risk_words(port: WorkbookPort) -> tuple[str, ...] | None:
    # a playbook broken while editing must not stop the check; 填写建议 names the bad cell
    try:
        return _playbook(port).risk_words
    except BadSetting:
        return None


def findings_rows(findings: list[Finding]) -> list[list[Any]]:
    return [list(FINDINGS_HEADER)] + [[f.sheet, f.row, f.cell, FIELD_BY_KEY[f.field].zh if f.field in FIELD_BY_KEY
                                 else f.field, f.severity, f.code, f.message] for f in findings]


def validate(port: WorkbookPort) -> str:
    names = port.sheet_names()
    table = load_table(port, names)
    findings = validate_table(table, now=port.now(), risk_words=_risk_words(port))
    port.replace_sheet(SHEET_FINDINGS, findings_rows(findings))
    errors = sum(f.severity == "error" for f in findings)
    done = f"校验完成：{len(table.rows)} 行，{errors} 个错误，{len(findings) - errors} 个提醒。详见“{SHEET_FINDINGS}”表。"
    if MARKS_SHEET not in names:
        # The colours come from conditional formats that only the template carries (with this
        # hidden sheet); adding them would need Windows-only COM, so an older workbook is told.
        return (done + f"\n本工作簿不是用新版模板建立的，没有标记颜色：问题单元格未上色，请看“{SHEET_FINDINGS}”表"
                "（用 complaint-desk template 生成的新模板会自动上色）。 / No mark colours in this workbook: "
                "see the findings sheet.")
    # The marks grid mirrors the table's cells: 2 = error, 1 = warning, empty = fine (fixed
    # cells lose their colour because the whole grid is rewritten every run).
    first_col = min(table.columns.values())
    last_col = max(list(table.columns.values()) + list(table.extra_columns.values()))
    top, bottom = table.header_row + 1, max(table.last_row, table.header_row + 1)
    grid: list[list[Any]] = [[None] * (last_col - first_col + 1) for _ in range(bottom - top + 1)]
    for f in findings:
        col = table.columns.get(f.field)
        if col is None or f.row < top:
            continue
        cell = grid[f.row - top]
        level = 2 if f.severity == "error" else 1
        cell[col - first_col] = max(cell[col - first_col] or 0, level)
    port.replace_sheet(MARKS_SHEET, [], hidden=True)
    port.write_block(MARKS_SHEET, top, first_col, grid)
    return done


def fill(port: WorkbookPort) -> str:
    table = load_table(port)
    fills = fills_for_table(table, _playbook(port), now=port.now())
    selected = set(port.selected_rows(table.sheet)) & {r.row for r in table.rows}
    if len(selected) > 1 or (selected and len(table.rows) == 1):
        fills = [f for f in fills if f.row in selected]
    if not fills:
        return "没有需要填写的空白单元格。"
    columns = dict(table.columns)
    next_col = max(list(columns.values()) + list(table.extra_columns.values())) + 1
    keys = [k for k in FILLED_KEYS + ("complaint_id", "shop") if any(k in f.values for f in fills)]
    for key in [k for k in FILLED_KEYS if k not in columns]:
        port.write_block(table.sheet, table.header_row, next_col, [[FIELD_BY_KEY[key].zh]])
        columns[key] = next_col
        next_col += 1
    existing = {r.row: r for r in table.rows}
    cells = 0
    for key in keys:
        changes = {f.row: f.values[key] for f in fills if key in f.values}
        lo, hi = min(changes), max(changes)
        # One write per column: rows between the changed ones get their own value back.
        block = [[changes[r] if r in changes else (existing[r].typed(key) if r in existing else None)]
                 for r in range(lo, hi + 1)]
        fmt = DATETIME_FORMAT if FIELD_BY_KEY[key].type == "datetime" else None
        port.write_block(table.sheet, lo, columns[key], block, number_format=fmt)
        cells += len(changes)
    return f"已为 {len(fills)} 行填写 {cells} 个空白单元格（已有内容不会被覆盖）。"


def new_complaint(port: WorkbookPort) -> str:
    table = load_table(port)
    now = port.now()
    shop = table.shop_code or ""
    existing = [v for r in table.rows if isinstance(v := r.values.get("complaint_id"), str)]
    cid = next_ids(shop, [now], existing)[0]
    row = max(table.last_row, table.header_row) + 1
    for key, value, fmt in (("complaint_id", cid, None), ("received_at", now, DATETIME_FORMAT),
                            ("shop", shop or None, None)):
        if key in table.columns and value is not None:
            port.write_block(table.sheet, row, table.columns[key], [[value]], number_format=fmt)
    return f"已在第 {row} 行新建投诉 {cid}，受理时间 {now:%Y-%m-%d %H:%M}。请在 2 小时内电话联系客户。"


def about(port: WorkbookPort, *, log_path: str = "", xlwings_version: str = "") -> str:
    table = None
    try:
        table = load_table(port)
    except NotAComplaintWorkbook:
        pass
    shop = table.shop_code if table else None
    return (f"投诉台账 Complaint Desk {__version__}（xlwings {xlwings_version}）\n"
            f"门店代码：{shop or '未设置（在“设置”表填写）'}\n"
            "时限：受理后 2 小时内联系客户，3 日内反馈，解决后回访（可在“设置”表修改）。\n"
            f"日志：{log_path}")


def wps_message(port: WorkbookPort) -> str | None:
    """One line when the program xlwings reached is WPS 表格 rather than Excel, else None.

    Installing WPS can register it as ``Excel.Application``, and xlwings then drives WPS, which
    it does not support: instead of failing somewhere inside a button, say so and point the
    shop to the feedback workbook the daemon writes for it.
    """
    version, path = port.app_identity()
    if not is_wps(version, path):
        return None
    name = port.book_name()
    return (f"检测到 WPS 表格（版本 {version or '未知'}），投诉台账加载项只能在 Microsoft Excel 中运行；"
            f"请打开本工作簿所在文件夹里的 {FEEDBACK_DIR}/{feedback_name(name)} 查看校验问题和处理建议"
            f"（总部服务自动更新）。 / WPS detected: open {FEEDBACK_DIR}/{feedback_name(name)} instead.")


def is_wps(version: str, path: str) -> bool:
    """WPS by where it is installed (Kingsoft) or by its version (11.1.0.x, 12.1.0.x; Excel says
    12.0 for 2007, 14.0, 15.0, 16.0 on Windows and 16.x on a Mac)."""
    folded = path.replace("\\", "/").lower()
    if any(word in folded for word in ("kingsoft", "wps office", "/wps", "ksoffice")):
        return True
    parts = [p for p in version.strip().split(".") if p]
    if not parts or not parts[0].isdigit():
        return False
    major = int(parts[0])
    return major < 12 or (major == 12 and len(parts) >= 3)


HANDLERS: dict[str, Callable[..., str]] = {
    "cd_validate": validate,
    "cd_fill": fill,
    "cd_new": new_complaint,
    "cd_about": about,
}
