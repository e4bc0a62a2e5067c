"""Shop settings that the rules read, declared once as data.

The template's settings area, the rules workbook, the TOML config and the docs all list
these; a test checks that docs/config.md names every one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date, time
from typing import Any


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    zh: str
    default: Any
    help_zh: str
    help_en: str
    # the largest number a time limit may be: a year. A value typed with extra zeros (99999999
    # hours) pushed a deadline past Python's calendar, and the shop's whole file was refused
    # with a message that named no setting
    most: float | None = None


YEAR_HOURS = 366 * 24


SETTINGS: tuple[Setting, ...] = (
    Setting("shop_code", "门店代码", "", "本店代码，用于投诉编号和汇总", "Shop code, used in complaint ids and the merge"),
    Setting("timezone", "时区", "Asia/Shanghai", "本店所在时区（Excel 里的时间按此理解）",
            "Time zone the shop's Excel times are in"),
    Setting("contact_hours", "联系时限（小时）", 2, "受理后多少小时内必须电话联系客户",
            "Hours after receipt by which the customer must be phoned", most=YEAR_HOURS),
    Setting("feedback_days", "反馈时限（天）", 3, "受理后多少天内必须向客户反馈进度或结果",
            "Days after receipt by which the customer gets feedback", most=366),
    Setting("followup_days", "回访时限（天）", 3, "解决后多少天内回访", "Days after resolution by which to follow up",
            most=366),
    Setting("business_hours", "按工作时间计算", False,
            "否：按自然时间计算（处理规定的原意）；是：只计工作时间、工作日，并按国家法定节假日和调休",
            "No: plain clock time (as the rules state); yes: count only business hours and working days, "
            "with Chinese public holidays and make-up days"),
    Setting("workday_start", "上班时间", time(9, 0), "工作时间开始", "Business hours start"),
    Setting("workday_end", "下班时间", time(18, 0), "工作时间结束", "Business hours end"),
    Setting("rest_weekdays", "休息日", (5, 6), "每周休息日（0=周一 … 6=周日）", "Weekly rest days (0=Mon … 6=Sun)"),
    Setting("cn_holidays", "国家法定节假日", True, "按工作时间计算时，是否计入法定节假日和调休上班日",
            "With business hours, whether Chinese public holidays and make-up days apply"),
    Setting("due_soon_hours", "提前预警（小时）", 1, "截止前多少小时提示“即将到期”",
            "Hours before a deadline that count as due soon", most=YEAR_HOURS),
)


@dataclass(frozen=True, slots=True)
class Settings:
    shop_code: str = ""
    timezone: str = "Asia/Shanghai"
    contact_hours: float = 2
    feedback_days: float = 3
    followup_days: float = 3
    business_hours: bool = False
    workday_start: time = time(9, 0)
    workday_end: time = time(18, 0)
    rest_weekdays: tuple[int, ...] = (5, 6)
    cn_holidays: bool = True
    due_soon_hours: float = 1
    extra: dict[str, Any] = field(default_factory=dict)
    # The shop's own days from its 节假日 sheet: ((date, is_workday), ...) sorted by date; they
    # win over the built-in calendar (complaint_core.holidays). Not a 设置 row, so not in SETTINGS.
    holidays: tuple[tuple[date, bool], ...] = ()

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


DEFAULTS = Settings()

# The declared list and the dataclass must agree (checked again by a test).
assert {s.key for s in SETTINGS} == {f.name for f in fields(Settings)} - {"extra", "holidays"}


_TRUE = {"是", "yes", "true", "1", "y", "对", "开"}
_FALSE = {"否", "no", "false", "0", "n", "不", "关", ""}


def _convert(setting: Setting, value: Any, where: str) -> Any:
    from .errors import BadSetting

    default = setting.default
    text = "" if value is None else str(value).strip()
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            folded = text.lower()
            if folded in _TRUE:
                return True
            if folded in _FALSE:
                return False
            raise ValueError
        if isinstance(default, int | float):
            number = float(value) if isinstance(value, int | float) else float(text)
            if setting.most is not None and not 0 <= number <= setting.most:   # NaN is out too
                raise BadSetting(where, value, f"“{setting.zh}”应在 0 到 {setting.most:g} 之间 "
                                               f"({setting.key}: 0 to {setting.most:g})")
            if number < 0:
                raise ValueError
            return number
        if isinstance(default, time):
            if isinstance(value, time):
                return value
            if hasattr(value, "time"):
                return value.time()
            if isinstance(value, float) and 0 <= value < 1:  # Excel stores a time as a day fraction
                minutes = round(value * 24 * 60)
                return time(minutes // 60, minutes % 60)
            hh, mm = text.replace("：", ":").split(":")[:2]
            return time(int(hh), int(mm))
        if isinstance(default, tuple):
            parts = [p for p in text.replace("，", ",").replace("、", ",").split(",") if p.strip()]
            days = tuple(int(float(p)) for p in parts)
            if any(d < 0 or d > 6 for d in days):
                raise ValueError
            return days
        return text
    except (ValueError, TypeError):
        raise BadSetting(where, value, f"“{setting.zh}”的值无法识别 (cannot read {setting.key})") from None


def settings_from_rows(rows: list[list[Any]], *, sheet: str = "设置") -> Settings:
    """The shop's 设置 sheet (项目 | 值) as Settings; unknown rows are left alone (notes)."""
    from .schema import SETTINGS_SHOP_LABELS, normalise_header

    # Labels are folded like headers, so "门店代码：" or "Shop Code" still count.
    by_label = {normalise_header(s.zh): s for s in SETTINGS} | {normalise_header(s.key): s for s in SETTINGS}
    by_label |= {normalise_header(x): SETTINGS[0] for x in SETTINGS_SHOP_LABELS}
    changes: dict[str, Any] = {}
    for i, row in enumerate(rows, start=1):
        if not row or not isinstance(row[0], str):
            continue
        setting = by_label.get(normalise_header(row[0]))
        if setting is None:
            continue
        value = row[1] if len(row) > 1 else None
        if setting.key == "shop_code":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            changes["shop_code"] = "" if value is None else str(value).strip()
            continue
        if value is None or value == "":
            continue  # an emptied cell means "use the default"
        changes[setting.key] = _convert(setting, value, f"{sheet}!B{i}")
    return replace(DEFAULTS, **changes)
