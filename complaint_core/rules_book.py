"""The rules workbook a manager edits: what is chain-wide (penalties, loss tiers, reminder times, staff).

``build_rules_template(path)`` writes it with today's defaults; ``load_rules(path)`` reads it
back and raises ``BadSetting`` naming the sheet, cell and value of anything wrong. A workbook
written by an earlier version (no 损失分级 sheet, no 扣款基数 column) still loads: the default
tiers apply and every base is blank (the tiers' fixed amounts apply).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadSetting

if TYPE_CHECKING:
    from openpyxl import Workbook
from .model import column_letter
from .penalties import DEFAULT_RULES, DEFAULT_TIERS, LossTier, PenaltyRule
from .settings import settings_from_rows
from .values import fold_digits

S_PENALTIES, S_REMINDERS, S_STAFF = "处罚规则", "提醒时间", "人员"
S_DEADLINES = "时限与工作时间"   # only in rules workbooks of earlier versions (see load_rules)
S_TIERS = "损失分级"
TIER_HEADER = ("分级编号", "损失下限（元，不含）", "损失上限（元，含；空=不封顶）", "责任人比例", "责任人固定金额",
               "部门负责人比例", "部门负责人固定金额", "说明")
# The staff sheet's columns after 主管邮箱 are found by their header, so columns added later
# (手机, 扣款基数) can sit in any order.
MOBILE_HEADER = "手机"
BASE_HEADER = "扣款基数（元）"
log = logging.getLogger("complaint_desk.rules")
KINDS = ("contact", "feedback", "followup", "loss")
# A manager reads and types the kind in Chinese; earlier workbooks have the English words.
KIND_ZH = {"contact": "首次联系", "feedback": "反馈", "followup": "回访", "loss": "损失（已停用）"}
KIND_BY_TEXT = {**{k: k for k in KINDS}, **{v: k for k, v in KIND_ZH.items()}, "损失": "loss"}


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    dept: str
    head: str
    email: str
    manager_email: str = ""
    mobile: str = ""   # 手机: group robots @ people by it (企业微信, 钉钉)
    base: float = 0.0          # wage or bonus base the loss tiers take their share of (0: none)


@dataclass(frozen=True, slots=True)
class Rules:
    """What is chain-wide. Deadlines and business hours are each shop's own (its 设置 sheet)."""

    penalties: tuple[PenaltyRule, ...] = DEFAULT_RULES
    reminder_times: tuple[time, ...] = (time(9, 0), time(15, 0))
    staff: tuple[Person, ...] = field(default_factory=tuple)
    tiers: tuple[LossTier, ...] = DEFAULT_TIERS

    def heads(self) -> dict[str, str]:
        return {p.dept: p.head for p in self.staff if p.dept and p.head}

    def bases(self) -> dict[str, float]:
        """Person -> wage or bonus base (only those with one on the staff sheet)."""
        return {p.name: p.base for p in self.staff if p.base > 0}

    def person(self, name: str) -> Person | None:
        return next((p for p in self.staff if p.name == name), None)


DEFAULT = Rules()

def build_rules_template(path: str | Path, rules: Rules = DEFAULT) -> None:
    from openpyxl import Workbook

    from .atomic import atomic_write

    wb = Workbook()
    wp = wb.worksheets[0]   # a new workbook's one sheet
    wp.title = S_PENALTIES
    wp.append(["规则编号", "时限（首次联系/反馈/回访）", "每次金额", "每天金额", "损失比例（已停用，见损失分级）", "说明"])
    for r in rules.penalties:
        wp.append([r.rule_id, KIND_ZH[r.kind], r.per_event, r.per_day, r.loss_share, r.description])
    wr = wb.create_sheet(S_REMINDERS)
    wr.append(["提醒时间(HH:MM)"])
    for t in rules.reminder_times:
        wr.append([t.strftime("%H:%M")])
    wsf = wb.create_sheet(S_STAFF)
    wsf.append(["姓名", "部门", "部门负责人", "邮箱", "主管邮箱", MOBILE_HEADER, BASE_HEADER])
    for p in rules.staff:
        wsf.append([p.name, p.dept, p.head, p.email, p.manager_email, p.mobile, p.base or None])
    wt = wb.create_sheet(S_TIERS)
    wt.append(list(TIER_HEADER))
    for tier in rules.tiers:
        wt.append([tier.tier_id, tier.min_loss, tier.max_loss, tier.person_share, tier.person_fixed,
                   tier.head_share, tier.head_fixed, tier.description])
    wt.column_dimensions["B"].width = wt.column_dimensions["C"].width = 24
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
        kind = KIND_BY_TEXT.get(str(row[1] or "").strip())
        if kind is None:
            raise BadSetting(_where(path, S_PENALTIES, f"B{i}"), row[1], "时限应为 首次联系、反馈 或 回访")
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
    header = next(wb[S_STAFF].iter_rows(max_row=1, values_only=True), ())
    base_col = _column(header, "扣款基数")
    mobile_col = _column(header, MOBILE_HEADER)   # a sheet from before 手机 has none
    for i, raw in enumerate(wb[S_STAFF].iter_rows(min_row=2, values_only=True), start=2):
        if not raw or raw[0] is None:
            continue
        raw = tuple(raw) + (None,) * 7
        text = tuple("" if v is None else str(v).strip() for v in raw)
        for col, v in (("D", text[3]), ("E", text[4])):
            if v and ("@" not in v or " " in v):
                raise BadSetting(_where(path, S_STAFF, f"{col}{i}"), v, "邮箱地址无效")
        mobile = "" if mobile_col is None else _mobile(
            raw[mobile_col], _where(path, S_STAFF, f"{column_letter(mobile_col)}{i}"))
        base = 0.0
        if base_col is not None and raw[base_col] not in (None, ""):
            base = _float(raw[base_col], _where(path, S_STAFF, f"{column_letter(base_col)}{i}"))
        staff.append(Person(text[0], text[1], text[2], text[3], text[4], mobile, base))
    tiers = _tiers(wb, path) if S_TIERS in wb.sheetnames else DEFAULT_TIERS
    wb.close()
    return Rules(tuple(rules), times, tuple(staff), tiers)


def _column(header: tuple[Any, ...], label: str) -> int | None:
    return next((j for j, h in enumerate(header) if h is not None and str(h).strip().startswith(label)), None)


def _tiers(wb: Workbook, path: Path) -> tuple[LossTier, ...]:
    """The 损失分级 sheet: one tier a row, in ascending order of loss, not overlapping."""
    out: list[LossTier] = []
    for i, row in enumerate(wb[S_TIERS].iter_rows(min_row=2, values_only=True), start=2):
        if not row or all(v in (None, "") for v in row):
            continue
        row = tuple(row) + (None,) * 8
        tid = str(row[0] or f"L{i - 1}").strip()
        low = _float(row[1] or 0, _where(path, S_TIERS, f"B{i}"))
        high = None if row[2] in (None, "") else _float(row[2], _where(path, S_TIERS, f"C{i}"))
        if high is not None and high <= low:
            raise BadSetting(_where(path, S_TIERS, f"C{i}"), row[2], "损失上限须大于下限")
        shares = []
        for col, j in (("D", 3), ("F", 5)):
            share = _float(row[j] or 0, _where(path, S_TIERS, f"{col}{i}"))
            if share > 1:
                raise BadSetting(_where(path, S_TIERS, f"{col}{i}"), row[j], "比例应在 0 到 1 之间（如 0.1 = 10%）")
            shares.append(share)
        if out and (out[-1].max_loss is None or low < out[-1].max_loss):
            raise BadSetting(_where(path, S_TIERS, f"B{i}"), row[1], "与上一级重叠：请按损失从小到大排列，下限不小于上一级上限")
        out.append(LossTier(tid, low, high, shares[0], _float(row[4] or 0, _where(path, S_TIERS, f"E{i}")),
                            shares[1], _float(row[6] or 0, _where(path, S_TIERS, f"G{i}")), str(row[7] or "")))
    return tuple(out)
