"""Contact, feedback and follow-up deadlines, each with the reason it is what it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .settings import DEFAULTS, Settings
from .workcal import add_business_days, add_business_time


@dataclass(frozen=True, slots=True)
class Deadlines:
    contact_due: datetime | None
    feedback_due: datetime | None
    followup_due: datetime | None
    why_zh: str
    why_en: str


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def deadlines(values: dict[str, Any], settings: Settings = DEFAULTS) -> Deadlines:
    received = values.get("received_at")
    resolved = values.get("resolved_at")
    received = received if isinstance(received, datetime) else None
    resolved = resolved if isinstance(resolved, datetime) else None
    h, fd, ud = settings.contact_hours, settings.feedback_days, settings.followup_days
    contact = add_business_time(received, timedelta(hours=h), settings) if received else None
    feedback = add_business_days(received, fd, settings) if received else None
    followup = add_business_days(resolved, ud, settings) if resolved else None
    mode_zh = "（按工作时间、工作日及法定节假日调休计算）" if settings.business_hours else "（按自然时间计算）"
    mode_en = " (business hours and working days)" if settings.business_hours else " (clock time)"
    why_zh = (f"受理后{_num(h)}小时内须电话联系客户；{_num(fd)}日内须反馈处理进度或结果；"
              f"解决后{_num(ud)}日内回访{mode_zh}。")
    why_en = (f"Phone the customer within {_num(h)} h of receipt; feedback within {_num(fd)} days; "
              f"follow up within {_num(ud)} days of resolution{mode_en}.")
    return Deadlines(contact, feedback, followup, why_zh, why_en)
