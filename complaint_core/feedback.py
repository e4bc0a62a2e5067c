"""What a shop without the add-in gets back: its file's problems and its open complaints' next steps.

Pure: the daemon (sync/feedback.py) hands in the file's records as value dicts, its
findings, the shop's settings and playbook, and ``now``; this module says what the per-shop
feedback workbook ``_反馈/<workbook>_反馈.xlsx`` holds, sheet by sheet, as plain rows. It is
read on a phone as often as on a PC, so every open complaint is one row, newest first, with
its three deadlines and their state spelled out in words, not colours.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .model import Finding, Invalid
from .overdue import KINDS, scan_record
from .playbook import DEFAULT_PLAYBOOK, Playbook
from .schema import FIELD_BY_KEY
from .settings import DEFAULTS, Settings
from .suggest import suggest_steps
from .validate import CLOCK_SKEW

FEEDBACK_DIR = "_反馈"
FEEDBACK_SUFFIX = "_反馈"
# Bumped when the layout changes, so every feedback file is rewritten once in the new layout.
LAYOUT = 1

STATE_WORDS = {"ok": "未到期 on time", "due_soon": "即将到期 due soon", "overdue": "已逾期 overdue",
               "done": "已按时完成 done", "done_late": "已完成（逾期） done late"}
DUE_HEADERS = {"contact": "联系截止 Contact due", "feedback": "反馈截止 Feedback due",
               "followup": "回访截止 Follow-up due"}
# Closed for the shop: nothing is due any more. A resolved complaint still waits for its follow-up.
CLOSED_STATUS = frozenset({"已回访", "已关闭", "不成立"})

SUMMARY_SHEET = "概要 Summary"
OPEN_SHEET = "待办投诉 Open"
FINDINGS_SHEET = "校验问题 Findings"
OPEN_HEADER = ("投诉编号 ID", "受理时间 Received", "客户 Customer", "投诉内容 Complaint", "处理状态 Status",
               DUE_HEADERS["contact"], DUE_HEADERS["feedback"], DUE_HEADERS["followup"],
               "建议处理步骤 Suggested steps", "行 Row")
OPEN_WIDTHS = (18, 16, 10, 30, 10, 18, 18, 18, 60, 6)
FINDINGS_HEADER = ("工作表 Sheet", "单元格 Cell", "字段 Field", "级别 Level", "原因 Reason")
FINDINGS_WIDTHS = (12, 8, 14, 10, 60)
LEVEL_WORDS = {"error": "错误 error", "warning": "提醒 warning"}


@dataclass(frozen=True, slots=True)
class FeedbackSheet:
    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    widths: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FeedbackBook:
    """The feedback workbook's content. ``digest`` covers everything but the time it was made,
    so it changes only when the shop's data or a deadline's state does."""

    sheets: tuple[FeedbackSheet, ...]
    digest: str
    open_count: int
    findings_count: int
    # The first moment after ``now`` at which the clock alone could change the content (a
    # deadline turning due soon or overdue, a time no longer in the future); None: never.
    # Until then a caller holding the same file need not build it again.
    next_change: datetime | None = None


def feedback_name(workbook_name: str) -> str:
    """``投诉-SH01.xlsx`` -> ``投诉-SH01_反馈.xlsx``."""
    stem = workbook_name.rsplit(".", 1)[0] if "." in workbook_name else workbook_name
    return f"{stem}{FEEDBACK_SUFFIX}.xlsx"


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, Invalid):
        return str(v.raw)
    if isinstance(v, datetime):
        return f"{v:%Y-%m-%d %H:%M}"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def is_open(values: dict[str, Any]) -> bool:
    """A complaint the shop still has something to do for."""
    if values.get("deleted") or values.get("status") in CLOSED_STATUS or values.get("validity") == "不成立":
        return False
    return isinstance(values.get("received_at"), datetime)


def _finding_tuple(f: Finding | Sequence[Any] | dict[str, Any]) -> tuple[str, int, str, str, str, str, str]:
    """A finding as (sheet, row, cell, field, severity, code, message), from a Finding, the
    store's tuple or the JSON dict (whatever the caller holds)."""
    if isinstance(f, Finding):
        return (f.sheet, f.row, f.cell, f.field, f.severity, f.code, f.message)
    if isinstance(f, dict):
        return (f["sheet"], f["row"], f["cell"], f["field"], f["severity"], f["code"], f["message"])
    sheet, row, cell, field, severity, code, message = f
    return (sheet, row, cell, field, severity, code, message)


def _deadline_cells(values: dict[str, Any], settings: Settings, now: datetime,
                    changes: list[datetime]) -> dict[str, str]:
    states = {item.kind: item for item in scan_record(values, now=now, settings=settings)}
    warn = timedelta(hours=settings.due_soon_hours)
    cells = {}
    for kind in KINDS:
        item = states.get(kind)
        cells[kind] = "" if item is None else f"{item.due:%m-%d %H:%M}\n{STATE_WORDS[item.state]}"
        if item is not None and item.done_at is None:
            # due soon from ``due - warn`` on, overdue once past ``due`` (overdue.scan_record)
            changes += [item.due - warn, item.due + _TICK]
    return cells


_TICK = timedelta(microseconds=1)


def _clock_changes(values: dict[str, Any], changes: list[datetime]) -> None:
    # validate calls a time "in the future" until now + CLOCK_SKEW reaches it
    for v in values.values():
        if isinstance(v, datetime):
            changes.append(v - CLOCK_SKEW + _TICK)


def build_feedback(workbook_name: str, records: Iterable[dict[str, Any]],
                   findings: Iterable[Finding | Sequence[Any] | dict[str, Any]], *,
                   settings: Settings = DEFAULTS, playbook: Playbook = DEFAULT_PLAYBOOK, now: datetime,
                   error: str | None = None) -> FeedbackBook:
    """The feedback workbook of one shop file.

    ``records``: the file's rows as value dicts (field key -> value), optionally with
    ``source_row`` (the Excel row); ``findings``: that file's findings; ``error``: why the
    file could not be read at all (then there are no records, and the summary says so).
    """
    opened: list[tuple[datetime, int, tuple[Any, ...]]] = []
    changes: list[datetime] = []
    for i, rec in enumerate(records):
        _clock_changes(rec, changes)
        if not is_open(rec):
            continue
        due = _deadline_cells(rec, settings, now, changes)
        steps = suggest_steps(rec, playbook, now=now, settings=settings)
        row = (_text(rec.get("complaint_id")), _text(rec.get("received_at")), _text(rec.get("customer_name")),
               _short(_text(rec.get("description"))), _text(rec.get("status")) or "新建",
               due["contact"], due["feedback"], due["followup"], steps, rec.get("source_row") or "")
        opened.append((rec["received_at"], i, row))
    # newest first; among complaints received at the same minute, the lower row first
    opened.sort(key=lambda t: (-t[0].timestamp(), t[1]))
    open_rows = tuple(r for _at, _i, r in opened)

    listed = [_finding_tuple(f) for f in findings]
    finding_rows = tuple(
        (sheet, cell or (f"{row}" if row else ""), FIELD_BY_KEY[field].zh if field in FIELD_BY_KEY else field,
         LEVEL_WORDS.get(severity, severity), message)
        for sheet, row, cell, field, severity, _code, message in listed)
    if error:
        finding_rows = (("", "", "", LEVEL_WORDS["error"], f"文件无法读取：{error} (the file could not be read)"),
                        *finding_rows)

    errors = sum(1 for r in listed if r[4] == "error") + (1 if error else 0)
    overdue = sum(1 for r in open_rows for c in r[5:8] if "overdue" in c)
    soon = sum(1 for r in open_rows for c in r[5:8] if "due soon" in c)
    summary = (
        ("工作簿 Workbook", workbook_name),
        ("说明 About", "本文件由投诉台账根据上面的工作簿自动生成，只供查看；请在原工作簿中修改，本文件会随之更新。"
                       " Written automatically from the workbook above: read only; edit the workbook itself."),
        ("校验问题 Findings", f"{len(finding_rows)} 个（错误 {errors} 个）" + ("：见“校验问题”表" if finding_rows else "")),
        ("待办投诉 Open", f"{len(open_rows)} 件，已逾期 {overdue} 项，即将到期 {soon} 项" +
         ("：见“待办投诉”表（最新的在最上面）" if open_rows else "")),
        ("截止时间 Deadlines", _deadline_rule(settings)),
    )
    sheets = (
        FeedbackSheet(SUMMARY_SHEET, ("项目 Item", "内容 Value"), summary, (16, 60)),
        FeedbackSheet(OPEN_SHEET, OPEN_HEADER, open_rows, OPEN_WIDTHS),
        FeedbackSheet(FINDINGS_SHEET, FINDINGS_HEADER, finding_rows, FINDINGS_WIDTHS),
    )
    blob = json.dumps([LAYOUT, [[s.name, s.header, s.rows] for s in sheets]], ensure_ascii=False, default=str)
    digest = hashlib.blake2b(blob.encode("utf-8"), digest_size=16).hexdigest()
    later = [t for t in changes if t > now]
    return FeedbackBook(sheets, digest, len(open_rows), len(finding_rows), min(later) if later else None)


def _deadline_rule(settings: Settings) -> str:
    h, fd, ud = (f"{settings.contact_hours:g}", f"{settings.feedback_days:g}", f"{settings.followup_days:g}")
    mode = "按工作时间（跳过休息日、节假日）" if settings.business_hours else "按自然时间"
    return f"受理后 {h} 小时内联系、{fd} 日内反馈，解决后 {ud} 日内回访；{mode}"
