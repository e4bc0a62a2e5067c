"""Contact, feedback and follow-up deadlines, each with the reason it is what it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any

from .schema import HARASSMENT
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


NO_DEADLINES_ZH = "骚扰来电不是投诉：不计联系、反馈和回访时限，也不处罚。"
NO_DEADLINES_EN = "A harassment call is not a complaint: no contact, feedback or follow-up deadline, no penalty."


def deadlines(values: dict[str, Any], settings: Settings = DEFAULTS) -> Deadlines:
    if values.get("category") == HARASSMENT:
        # seed 001 第四篇 五: end the call, log it, trace the source; nobody owes the caller a reply
        return Deadlines(None, None, None, NO_DEADLINES_ZH, NO_DEADLINES_EN)
    received = values.get("received_at")
    resolved = values.get("resolved_at")
    received = received if isinstance(received, datetime) else None
    resolved = resolved if isinstance(resolved, datetime) else None
    h, fd, ud = settings.contact_hours, settings.feedback_days, settings.followup_days
    contact = add_business_time(received, timedelta(hours=h), settings) if received else None
    feedback = add_business_days(received, fd, settings) if received else None
    followup = add_business_days(resolved, ud, settings) if resolved else None
    why_zh, why_en = explain(settings)
    return Deadlines(contact, feedback, followup, why_zh, why_en)


def explain(settings: Settings = DEFAULTS) -> tuple[str, str]:
    """Where each deadline comes from, in words staff can check against the handling rules."""
    # The text depends only on a few settings: build it once per combination, not per record
    # (a scan of 100k complaints spent most of its time here).
    return _explain(settings.contact_hours, settings.feedback_days, settings.followup_days,
                    settings.business_hours, settings.workday_start, settings.workday_end,
                    settings.cn_holidays)


@lru_cache(maxsize=64)
def _explain(contact_hours: float, feedback_days: float, followup_days: float, business_hours: bool,
             workday_start: time, workday_end: time, cn_holidays: bool) -> tuple[str, str]:
    settings = Settings(contact_hours=contact_hours, feedback_days=feedback_days, followup_days=followup_days,
                        business_hours=business_hours, workday_start=workday_start, workday_end=workday_end,
                        cn_holidays=cn_holidays)
    h, fd, ud = _num(settings.contact_hours), _num(settings.feedback_days), _num(settings.followup_days)
    why_zh = (f"受理后{h}小时内必须电话联系客户（处理规定：2小时内相关责任人必须与客户进行电话联系）；"
              f"受理后{fd}日内必须反馈（处理规定：3日内必须向客户反馈处理进度或结果）；"
              f"解决后{ud}日内回访（跟踪服务）。")
    why_en = (f"Phone the customer within {h} h of receipt (rule: the responsible person phones within "
              f"2 hours); give feedback within {fd} days (rule: progress or result within 3 days); "
              f"follow up within {ud} days of resolution.")
    if settings.business_hours:
        start, end = f"{settings.workday_start:%H:%M}", f"{settings.workday_end:%H:%M}"
        hol_zh = "、法定节假日（调休上班日照常计）" if settings.cn_holidays else ""
        hol_en = ", public holidays (make-up working days count)" if settings.cn_holidays else ""
        why_zh += (f"本店按工作时间计算：只计工作日{start}–{end}，跳过休息日{hol_zh}；"
                   "按日计的时限数工作日，时刻不变。")
        why_en += (f" Business hours: only working days {start}-{end} count, skipping rest days"
                   f"{hol_en}; day limits count working days at the same time of day.")
    else:
        why_zh += "按自然时间计算（含夜间和节假日）。"
        why_en += " Clock time (nights and holidays included)."
    return why_zh, why_en
