"""The rules workbook a manager edits: deadlines, hours, penalties, loss tiers, reminder times, staff.

``build_rules_template(path)`` writes it with today's defaults; ``load_rules(path)`` reads it
back and raises ``BadSetting`` naming the sheet, cell and value of anything wrong. A workbook
written by an earlier version (no 损失分级 sheet, no 扣款基数 column) still loads: the default
tiers apply and every base is blank (the tiers' fixed amounts apply).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from .errors import BadSetting
from .penalties import DEFAULT_RULES, DEFAULT_TIERS, LossTier, PenaltyRule
from .settings import DEFAULTS, Settings

S_DEADLINES, S_PENALTIES, S_REMINDERS, S_STAFF = "时限与工作时间", "处罚规则", "提醒时间", "人员"
S_TIERS = "损失分级"
TIER_HEADER = ("分级编号", "损失下限（元，不含）", "损失上限（元，含；空=不封顶）", "责任人比例", "责任人固定金额",
               "部门负责人比例", "部门负责人固定金额", "说明")
# The staff sheet's columns are found by their header, so columns added later (手机, 扣款基数)
# can sit in any order; this one is appended at the end.
BASE_HEADER = "扣款基数（元）"
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
    base: float = 0.0          # wage or bonus base the loss tiers take their share of (0: none)


@dataclass(frozen=True, slots=True)
class Rules:
    settings: Settings = DEFAULTS
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

# (label, settings key, kind) rows of the deadlines sheet, declared once.
_DEADLINE_ROWS = (
    ("联系时限（小时）", "contact_hours", "float"), ("反馈时限（天）", "feedback_days", "float"),
    ("回访时限（天）", "followup_days", "float"), ("按工作时间计算", "business_hours", "bool"),
    ("上班时间", "workday_start", "time"), ("下班时间", "workday_end", "time"),
    ("休息日（0=周一…6=周日，逗号分隔）", "rest_weekdays", "days"),
    ("国家法定节假日和调休", "cn_holidays", "bool"), ("提前预警（小时）", "due_soon_hours", "float"),
)


def build_rules_template(path: str | Path, rules: Rules = DEFAULT) -> None:
    from openpyxl import Workbook

    from .atomic import atomic_write

    wb = Workbook()
    ws = wb.active
    ws.title = S_DEADLINES
    ws.append(["项目", "值"])
    for label, key, kind in _DEADLINE_ROWS:
        v = getattr(rules.settings, key)
        if kind == "bool":
            v = "是" if v else "否"
        elif kind == "time":
            v = v.strftime("%H:%M")
        elif kind == "days":
            v = ",".join(str(d) for d in v)
        ws.append([label, v])
    ws.column_dimensions["A"].width = 36
    wp = wb.create_sheet(S_PENALTIES)
    wp.append(["规则编号", "时限（首次联系/反馈/回访）", "每次金额", "每天金额", "损失比例（已停用，见损失分级）", "说明"])
    for r in rules.penalties:
        wp.append([r.rule_id, KIND_ZH[r.kind], r.per_event, r.per_day, r.loss_share, r.description])
    wr = wb.create_sheet(S_REMINDERS)
    wr.append(["提醒时间(HH:MM)"])
    for t in rules.reminder_times:
        wr.append([t.strftime("%H:%M")])
    wsf = wb.create_sheet(S_STAFF)
    wsf.append(["姓名", "部门", "部门负责人", "邮箱", "主管邮箱", BASE_HEADER])
    for p in rules.staff:
        wsf.append([p.name, p.dept, p.head, p.email, p.manager_email, p.base or None])
    wt = wb.create_sheet(S_TIERS)
    wt.append(list(TIER_HEADER))
    for t in rules.tiers:
        wt.append([t.tier_id, t.min_loss, t.max_loss, t.person_share, t.person_fixed, t.head_share, t.head_fixed,
                   t.description])
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


def load_rules(path: str | Path) -> Rules:
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    path = Path(path)
    from .safety import check_xlsx
    check_xlsx(path)
    wb = load_workbook(path, read_only=True, data_only=True)
    for name in (S_DEADLINES, S_PENALTIES, S_REMINDERS, S_STAFF):
        if name not in wb.sheetnames:
            raise BadSetting(f"{path.name} [{name}]", None, "缺少工作表")
    values: dict[str, Any] = {}
    by_label = {label: (key, kind) for label, key, kind in _DEADLINE_ROWS}
    for i, row in enumerate(wb[S_DEADLINES].iter_rows(min_row=2, values_only=True), start=2):
        if not row or row[0] is None:
            continue
        label = str(row[0]).strip()
        v = row[1] if len(row) > 1 else None
        where = _where(path, S_DEADLINES, f"B{i}")
        if label not in by_label:
            raise BadSetting(_where(path, S_DEADLINES, f"A{i}"), label, "未知项目")
        key, kind = by_label[label]
        if kind == "float":
            values[key] = _float(v, where)
        elif kind == "bool":
            if str(v).strip() not in ("是", "否", "True", "False"):
                raise BadSetting(where, v, "应为 是 或 否")
            values[key] = str(v).strip() in ("是", "True")
        elif kind == "time":
            values[key] = _time(v, where)
        else:
            try:
                days = tuple(int(x) for x in str(v).replace("，", ",").split(",") if x.strip())
            except ValueError:
                raise BadSetting(where, v, "应为 0–6 的数字，逗号分隔") from None
            if any(d < 0 or d > 6 for d in days):
                raise BadSetting(where, v, "应为 0–6 的数字，逗号分隔")
            values[key] = days
    settings = DEFAULTS.with_(**values)
    if settings.workday_start >= settings.workday_end:
        raise BadSetting(_where(path, S_DEADLINES, "上班/下班时间"), settings.workday_end, "下班时间须晚于上班时间")
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
    base_col = next((j for j, h in enumerate(header) if h is not None and str(h).strip().startswith("扣款基数")), None)
    for i, row in enumerate(wb[S_STAFF].iter_rows(min_row=2, values_only=True), start=2):
        if not row or row[0] is None:
            continue
        raw = tuple(row)
        row = tuple("" if v is None else str(v).strip() for v in raw + (None,) * 5)
        for col, v in (("D", row[3]), ("E", row[4])):
            if v and ("@" not in v or " " in v):
                raise BadSetting(_where(path, S_STAFF, f"{col}{i}"), v, "邮箱地址无效")
        base = 0.0
        if base_col is not None and base_col < len(raw) and raw[base_col] not in (None, ""):
            base = _float(raw[base_col], _where(path, S_STAFF, f"{get_column_letter(base_col + 1)}{i}"))
        staff.append(Person(row[0], row[1], row[2], row[3], row[4], base))
    tiers = _tiers(wb, path) if S_TIERS in wb.sheetnames else DEFAULT_TIERS
    wb.close()
    return Rules(settings, tuple(rules), times, tuple(staff), tiers)


def _tiers(wb: Any, path: Path) -> tuple[LossTier, ...]:
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
