"""The rules workbook a manager edits: what is chain-wide (penalties, reminder times, staff).

``build_rules_template(path)`` writes it with today's defaults; ``load_rules(path)`` reads it
back and raises ``BadSetting`` naming the sheet, cell and value of anything wrong.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from .errors import BadSetting
from .penalties import DEFAULT_RULES, PenaltyRule
from .settings import settings_from_rows
from .values import fold_digits

S_PENALTIES, S_REMINDERS, S_STAFF = "处罚规则", "提醒时间", "人员"
S_DEADLINES = "时限与工作时间"   # only in rules workbooks of earlier versions (see load_rules)
log = logging.getLogger("complaint_desk.rules")
KINDS = ("contact", "feedback", "followup", "loss")


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    dept: str
    head: str
    email: str
    manager_email: str = ""
    mobile: str = ""   # 手机: group robots @ people by it (企业微信, 钉钉)


@dataclass(frozen=True, slots=True)
class Rules:
    """What is chain-wide. Deadlines and business hours are each shop's own (its 设置 sheet)."""

    penalties: tuple[PenaltyRule, ...] = DEFAULT_RULES
    reminder_times: tuple[time, ...] = (time(9, 0), time(15, 0))
    staff: tuple[Person, ...] = field(default_factory=tuple)

    def heads(self) -> dict[str, str]:
        return {p.dept: p.head for p in self.staff if p.dept and p.head}

    def person(self, name: str) -> Person | None:
        return next((p for p in self.staff if p.name == name), None)


DEFAULT = Rules()

def build_rules_template(path: str | Path, rules: Rules = DEFAULT) -> None:
    from openpyxl import Workbook

    from .atomic import atomic_write

    wb = Workbook()
    wp = wb.active
    wp.title = S_PENALTIES
    wp.append(["规则编号", "类型(contact/feedback/followup/loss)", "每次金额", "每天金额", "损失比例", "说明"])
    for r in rules.penalties:
        wp.append([r.rule_id, r.kind, r.per_event, r.per_day, r.loss_share, r.description])
    wr = wb.create_sheet(S_REMINDERS)
    wr.append(["提醒时间(HH:MM)"])
    for t in rules.reminder_times:
        wr.append([t.strftime("%H:%M")])
    wsf = wb.create_sheet(S_STAFF)
    wsf.append(["姓名", "部门", "部门负责人", "邮箱", "主管邮箱", "手机"])
    for p in rules.staff:
        wsf.append([p.name, p.dept, p.head, p.email, p.manager_email, p.mobile])
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for c in row:
                if isinstance(c.value, str):
                    c.data_type = "s"
    with atomic_write(Path(path)) as tmp:
        wb.save(tmp)


def _where(path: Path, sheet: str, cell: str) -> str:
    return f"{path.name} [{sheet}] {cell}"


def _float(v: Any, where: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise BadSetting(where, v, "应为数字") from None
    if f < 0:
        raise BadSetting(where, v, "不能为负数")
    return f


def _time(v: Any, where: str) -> time:
    if isinstance(v, time):
        return v
    try:
        h, m = str(v).strip().split(":")[:2]
        return time(int(h), int(m))
    except (ValueError, TypeError):
        raise BadSetting(where, v, "应为时间，如 09:00") from None


_MOBILE = re.compile(r"1[3-9]\d{9}")


def _mobile(v: Any, where: str) -> str:
    """A mainland mobile as the chat apps know it: 11 digits; spaces, dashes, +86 and full-width
    digits tolerated, and the float Excel makes of a number typed into a number cell."""
    if v is None or v == "":
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    text = re.sub(r"[\s\-()（）]", "", fold_digits(str(v)))
    text = text.removeprefix("+86").removeprefix("0086")
    if not _MOBILE.fullmatch(text):
        raise BadSetting(where, v, "手机号应为 11 位中国大陆手机号，例如 13800138000")
    return text


def load_rules(path: str | Path) -> Rules:
    from openpyxl import load_workbook

    path = Path(path)
    from .safety import check_xlsx
    check_xlsx(path)
    wb = load_workbook(path, read_only=True, data_only=True)
    for name in (S_PENALTIES, S_REMINDERS, S_STAFF):
        if name not in wb.sheetnames:
            raise BadSetting(f"{path.name} [{name}]", None, "缺少工作表")
    if S_DEADLINES in wb.sheetnames:
        # A rules workbook from before deadlines were each shop's own: read with the same
        # declaration as the 设置 sheet (so a typo is still named), then set aside.
        rows = [list(r) for r in wb[S_DEADLINES].iter_rows(min_row=1, values_only=True)]
        settings_from_rows(rows, sheet=f"{path.name}!{S_DEADLINES}")
        log.warning("%s：“%s”表已不再使用，时限和工作时间按各门店工作簿的“设置”表计算", path.name, S_DEADLINES)
    rules = []
    for i, row in enumerate(wb[S_PENALTIES].iter_rows(min_row=2, values_only=True), start=2):
        if not row or row[0] is None:
            continue
        row = tuple(row) + (None,) * 6
        kind = str(row[1] or "").strip()
        if kind not in KINDS:
            raise BadSetting(_where(path, S_PENALTIES, f"B{i}"), row[1], "类型应为 contact/feedback/followup/loss")
        share = _float(row[4] or 0, _where(path, S_PENALTIES, f"E{i}"))
        if share > 1:
            raise BadSetting(_where(path, S_PENALTIES, f"E{i}"), row[4], "损失比例应在 0 到 1 之间")
        rules.append(PenaltyRule(str(row[0]).strip(), kind, _float(row[2] or 0, _where(path, S_PENALTIES, f"C{i}")),
                                 _float(row[3] or 0, _where(path, S_PENALTIES, f"D{i}")), share,
                                 str(row[5] or "")))
    times = tuple(_time(r[0], _where(path, S_REMINDERS, f"A{i}"))
                  for i, r in enumerate(wb[S_REMINDERS].iter_rows(min_row=2, values_only=True), start=2)
                  if r and r[0] is not None)
    staff = []
    for i, raw in enumerate(wb[S_STAFF].iter_rows(min_row=2, values_only=True), start=2):
        if not raw or raw[0] is None:
            continue
        raw = tuple(raw) + (None,) * 6
        row = tuple("" if v is None else str(v).strip() for v in raw)
        for col, v in (("D", row[3]), ("E", row[4])):
            if v and ("@" not in v or " " in v):
                raise BadSetting(_where(path, S_STAFF, f"{col}{i}"), v, "邮箱地址无效")
        mobile = _mobile(raw[5], _where(path, S_STAFF, f"F{i}"))   # a sheet from before 手机 has no F
        staff.append(Person(row[0], row[1], row[2], row[3], row[4], mobile))
    wb.close()
    return Rules(tuple(rules), times, tuple(staff))
