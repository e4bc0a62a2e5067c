"""Which deadlines are due soon, overdue or were met late, computed "as of now".

Pure: ``now`` is passed in, so a machine that was off simply scans at the real clock when it
starts and every breach that happened meanwhile shows up (catch-up by construction).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .deadlines import deadlines
from .gcpause import paused_gc
from .settings import DEFAULTS, Settings

KINDS = ("contact", "feedback", "followup")
KIND_ZH = {"contact": "首次联系", "feedback": "反馈", "followup": "回访"}
DONE_FIELD = {"contact": "first_contact_at", "feedback": "feedback_at", "followup": "followup_at"}
STATE_ZH = {"ok": "未到期", "due_soon": "即将到期", "overdue": "已逾期", "done_late": "逾期完成",
            "done": "按时完成"}


@dataclass(frozen=True, slots=True)
class OverdueItem:
    record_id: str
    shop: str
    complaint_id: str
    kind: str
    due: datetime
    done_at: datetime | None
    state: str
    late: timedelta            # how late (zero when not late)
    person: str
    dept: str
    basis: tuple[str, datetime | None, str, bool, datetime]  # (base label, base time, rule, business hours, now)

    @property
    def why(self) -> str:
        """How the deadline was computed, in the words the 逾期 sheet shows.

        Built on demand: a scan of 100,000 complaints makes 300,000 items and the sheet
        shows only the flagged ones.
        """
        if self.done_at is None and self.state == "overdue":
            return f"{self.how}；截至 {_fmt(self.basis[4])} 仍未完成"
        return self.how

    @property
    def how(self) -> str:
        """``why`` without "截至 … 仍未完成": what stays true of an open deadline as the clock goes
        on (the merged workbook adds the rest at each write)."""
        label, base, rule, business, _now = self.basis
        mode = "（按工作时间，跳过休息日和法定节假日）" if business else "（按自然时间）"
        how = f"{KIND_ZH[self.kind]}截止 = {label} {_fmt(base or self.due)} {rule}{mode} = {_fmt(self.due)}"
        if self.done_at is not None:
            how += f"；实际 {_fmt(self.done_at)}"
        return how

    @property
    def late_days(self) -> int:
        """Whole days late, each started day counting (the per-day penalty counts these)."""
        if self.late <= timedelta(0):
            return 0
        return int(self.late / timedelta(days=1)) + (1 if self.late % timedelta(days=1) else 0)


def _dt(v: Any) -> datetime | None:
    return v if isinstance(v, datetime) else None


def _fmt(d: datetime) -> str:
    # "2026-10-01 09:30", as f"{d:%Y-%m-%d %H:%M}" but without strftime (300,000 calls per scan)
    return d.isoformat(sep=" ", timespec="minutes")


def _rule_texts(settings: Settings) -> dict[str, str]:
    return _texts(settings.contact_hours, settings.feedback_days, settings.followup_days)


@functools.lru_cache(maxsize=256)
def _texts(contact_hours: float, feedback_days: float, followup_days: float) -> dict[str, str]:
    # a scan of a million complaints asks this for every one: the shops have a few settings
    return {"contact": f"+{contact_hours:g}小时", "feedback": f"+{feedback_days:g}日",
            "followup": f"+{followup_days:g}日"}


def feedback_given(rec: dict[str, Any]) -> datetime | None:
    """When the customer got feedback: the 反馈时间, or the result itself (解决时间), whichever
    came first. The rule asks for "progress or the result" within 3 days (seed 004), so a
    complaint resolved on day 2 owes no separate feedback (`suggest` says the same)."""
    times = [t for t in (_dt(rec.get("feedback_at")), _dt(rec.get("resolved_at"))) if t is not None]
    if len({t.tzinfo is None for t in times}) > 1:
        # one typed with a zone, one without: compared as the shop's clock showed them (Python
        # cannot order the two, and a file with such cells must still be read)
        return min(times, key=lambda t: t.replace(tzinfo=None))
    return min(times) if times else None


def record_dues(rec: dict[str, Any], settings: Settings) -> tuple[datetime | None, ...]:
    """The deadlines stored for the record's version (computed once in the reader); a bare dict
    gets them computed here."""
    dues = rec.get("dues")
    if dues is None:
        d = deadlines(rec, settings)
        return (d.contact_due, d.feedback_due, d.followup_due)
    return tuple(dues)


def deadline_state(due: datetime, done: datetime | None, now: datetime, warn: timedelta) -> str:
    """done / done_late when it was met, else overdue / due_soon / ok as of ``now``."""
    if done is not None:
        return "done" if done <= due else "done_late"
    if now > due:
        return "overdue"
    return "due_soon" if now >= due - warn else "ok"


# (kind, due, when it was met or None, warning time): one deadline of a record, all that
# classifying it needs besides the clock
Deadline = tuple[str, datetime, "datetime | None", timedelta]


def _judged_invalid(rec: dict[str, Any]) -> bool:
    # deleted from its file, or judged 不成立: no deadline holds
    return bool(rec.get("deleted")) or rec.get("validity") == "不成立" or rec.get("status") == "不成立"


@functools.lru_cache(maxsize=64)
def warning_time(hours: float) -> timedelta:
    """``timedelta(hours=hours)``, one object per value: every open deadline of a shop's piece
    (merged/pieces.py) carries its warning time, and a piece that shares one object among them
    is pickled once per value, not once per line. Loading a piece of 3,000 complaints at every
    save took 3.0 ms with a timedelta per line, 1.75 ms with them shared (issue 17)."""
    return timedelta(hours=hours)


def record_deadlines(rec: dict[str, Any], settings: Settings = DEFAULTS,
                     warn_hours: float | None = None) -> list[Deadline]:
    """Each deadline of one complaint with when it was met; none for a record deleted or judged
    不成立. A record from the store carries its own file's ``settings`` and the ``dues`` the
    engine computed for its version with them; those win over ``settings`` (the fallback for a
    bare dict). What ``scan_record`` and ``state_counts`` classify, worked out once: the render
    asks for a complaint's states, its open deadlines and its 逾期 lines (merged/walk.py)."""
    if _judged_invalid(rec):
        return []
    settings = rec.get("settings") or settings
    warn = warning_time(settings.due_soon_hours if warn_hours is None else warn_hours)
    done = (_dt(rec.get(DONE_FIELD["contact"])), feedback_given(rec), _dt(rec.get(DONE_FIELD["followup"])))
    return [(kind, due, met, warn) for kind, due, met in zip(KINDS, record_dues(rec, settings), done, strict=True)
            if due is not None]


def scan_record(rec: dict[str, Any], *, now: datetime, settings: Settings = DEFAULTS,
                warn_hours: float | None = None) -> list[OverdueItem]:
    """Every deadline of one complaint with its state; records not valid or deleted have none
    (``record_deadlines``)."""
    return record_items(rec, record_deadlines(rec, settings, warn_hours), now=now, settings=settings)


def record_items(rec: dict[str, Any], found: list[Deadline], *, now: datetime,
                 settings: Settings = DEFAULTS) -> list[OverdueItem]:
    """The items of ``found``, one complaint's deadlines as ``record_deadlines`` gave them."""
    if not found:
        return []
    settings = rec.get("settings") or settings
    received = _dt(rec.get("received_at"))
    rules = _rule_texts(settings)
    out = []
    for kind, due, done, warn in found:
        state = deadline_state(due, done, now, warn)
        late = max(done - due, timedelta(0)) if done is not None else (now - due if state == "overdue"
                                                                          else timedelta(0))
        basis = ("受理", received, rules[kind], settings.business_hours, now) if kind != "followup" and received \
            else ("解决", _dt(rec.get("resolved_at")), rules[kind], settings.business_hours, now)
        out.append(OverdueItem(str(rec.get("record_id") or ""), str(rec.get("shop") or ""),
                               str(rec.get("complaint_id") or ""), kind, due, done, state, late,
                               str(rec.get("responsible_person") or rec.get("received_by") or ""),
                               str(rec.get("responsible_dept") or ""), basis))
    return out


@paused_gc()   # 3 items per complaint; see gcpause
def scan(records: Iterable[dict[str, Any]], *, now: datetime, settings: Settings = DEFAULTS,
         warn_hours: float | None = None) -> list[OverdueItem]:
    items: list[OverdueItem] = []
    for rec in records:
        items.extend(scan_record(rec, now=now, settings=settings, warn_hours=warn_hours))
    return items


def state_counts(records: Iterable[dict[str, Any]], *, now: datetime) -> dict[tuple[str, str], int]:
    """(kind, state) -> how many deadlines, as ``scan`` would classify them, without building an
    item per deadline (汇总's promise rates count a million complaints' deadlines)."""
    counts: dict[tuple[str, str], int] = {}
    for rec in records:
        for kind, due, done, warn in record_deadlines(rec):
            state = deadline_state(due, done, now, warn)
            counts[(kind, state)] = counts.get((kind, state), 0) + 1
    return counts


# the states 逾期 lists
LISTED = frozenset({"due_soon", "overdue", "done_late"})


def flagged(items: Iterable[OverdueItem]) -> list[OverdueItem]:
    """What the 逾期 sheet lists: due soon, overdue, done late."""
    return [i for i in items if i.state in LISTED]


def open_items(items: Iterable[OverdueItem]) -> list[OverdueItem]:
    """The deadlines still to act on (due soon, overdue): what the day's digests list."""
    return [i for i in items if i.state in ("due_soon", "overdue")]
