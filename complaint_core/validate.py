"""Every rule of the record schema, as one pure function of the table, the settings and ``now``.

The add-in, the CLI, the daemon and the scheduler all call ``validate_table``, so a row
gets the same findings wherever it is checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from .deadlines import Deadlines, deadlines
from .escalation import DEFAULT_RISK_WORDS, escalation_reasons
from .findings import make_finding
from .holidays import SHEET_HOLIDAYS, builtin_version, builtin_years, log_uncovered, uncovered_years
from .model import ComplaintTable, Finding, Invalid, SourceRow
from .schema import FIELDS, MAX_ID_CHARS
from .settings import DEFAULTS, Settings
from .values import fold_digits

# A shop PC's clock may run a few minutes ahead of the server's; don't call that "future".
CLOCK_SKEW = timedelta(minutes=5)
_MOBILE = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^(?:\+?86)?0\d{2,3}\d{7,8}(?:(?:转|ext|x|#)\d{1,6})?$")
_SERVICE = re.compile(r"^(?:400|800)\d{7}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_PHONE_STRIP = re.compile(r"[\s\-()（）]")
REQUIRED = tuple(f.key for f in FIELDS if f.required)
_ORDER = {f.key: i for i, f in enumerate(FIELDS)}


def phone_ok(text: str) -> bool:
    s = _PHONE_STRIP.sub("", fold_digits(text))
    return bool(_MOBILE.match(s) or _LANDLINE.match(s) or _SERVICE.match(s))


def email_ok(text: str) -> bool:
    return bool(_EMAIL.match(fold_digits(text).strip()))


def validate_row(values: dict[str, Any], *, now: datetime, settings: Settings = DEFAULTS,
                 present: frozenset[str] | None = None,
                 risk_words: tuple[str, ...] = DEFAULT_RISK_WORDS,
                 due: Deadlines | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(field key, code, message args) for one row; ``present`` = columns the table has;
    ``risk_words`` = the shop's escalation words (处理手册); ``due`` = the row's deadlines
    under ``settings`` when the caller has worked them out already."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    cols = present if present is not None else frozenset(values)
    get = values.get
    if Invalid in set(map(type, values.values())):   # one C pass; most rows have no bad cell
        for key, v in values.items():
            if isinstance(v, Invalid):
                out.append((key, v.code, {"value": v.raw}))
    for key in REQUIRED:
        if key in cols and get(key) is None:
            out.append((key, "required", {}))
    cid = get("complaint_id")
    if isinstance(cid, str) and len(cid.strip()) > MAX_ID_CHARS:
        out.append(("complaint_id", "id_too_long", {"length": len(cid.strip())}))
    phone, email = get("customer_phone"), get("customer_email")
    if isinstance(phone, int | float) and not isinstance(phone, bool):
        # A phone typed into a number cell arrives as 13800138000.0; judge its digits.
        phone = str(int(phone)) if float(phone).is_integer() else str(phone)
    if phone is None and email is None and ("customer_phone" in cols or "customer_email" in cols):
        out.append(("customer_phone", "phone_or_email", {}))
    if isinstance(phone, str) and not phone_ok(phone):
        out.append(("customer_phone", "bad_phone", {"value": phone}))
    if isinstance(email, str) and not email_ok(email):
        out.append(("customer_email", "bad_email", {"value": email}))
    limit = now + CLOCK_SKEW
    received = get("received_at")
    for key in ("received_at", "first_contact_at", "feedback_at", "resolved_at", "followup_at"):
        v = get(key)
        if isinstance(v, datetime):
            if v > limit:
                out.append((key, "future_datetime", {"value": v}))
            if key != "received_at" and key != "followup_at" and isinstance(received, datetime) and v < received:
                out.append((key, "before_received", {"value": v, "received": received}))
    resolved, followup = get("resolved_at"), get("followup_at")
    if isinstance(followup, datetime):
        if isinstance(resolved, datetime) and followup < resolved:
            out.append(("followup_at", "followup_before_resolved", {"value": followup, "resolved": resolved}))
        elif isinstance(received, datetime) and followup < received:
            out.append(("followup_at", "before_received", {"value": followup, "received": received}))
    for key in ("loss_amount", "compensation_amount"):
        v = get(key)
        if isinstance(v, int | float) and v < 0:
            out.append((key, "negative_amount", {"value": v}))
    validity, status = get("validity"), get("status")
    if validity == "成立":
        for key in ("responsible_dept", "responsible_person"):
            if get(key) is None:
                out.append((key, "responsible_missing", {}))
    if status in ("已解决", "已回访", "已关闭") and get("resolved_at") is None:
        out.append(("resolved_at", "status_needs_resolved", {"value": status}))
    if status in ("已回访", "已关闭") and get("followup_at") is None:
        out.append(("followup_at", "status_needs_followup", {"value": status}))
    if status == "不成立" and validity != "不成立":
        out.append(("validity", "status_needs_invalid", {"value": status}))
    if validity == "不成立" and get("resolution_plan") is None:
        out.append(("resolution_plan", "invalid_needs_reply", {}))
    if isinstance(received, datetime):
        if due is None:
            due = deadlines(values, settings)
        contact = get("first_contact_at")
        if isinstance(contact, datetime) and due.contact_due and contact > due.contact_due:
            out.append(("first_contact_at", "contact_late", {"value": contact, "due": due.contact_due}))
        feedback = get("feedback_at")
        if isinstance(feedback, datetime) and due.feedback_due and feedback > due.feedback_due:
            out.append(("feedback_at", "feedback_late", {"value": feedback, "due": due.feedback_due}))
        followup = get("followup_at")
        if isinstance(followup, datetime) and due.followup_due and followup > due.followup_due:
            out.append(("followup_at", "followup_late", {"value": followup, "due": due.followup_due}))
    if get("severity") == "严重" and get("manager_approval") is None and status not in (
            "待批示", "已解决", "已回访", "已关闭", "不成立"):
        out.append(("manager_approval", "severe_not_escalated", {}))
    if get("severity") != "严重" and "severity" in cols:
        # 12315, a threat of the press, a connected customer: left at 一般 they would skip the
        # 预警上报 path (seed 004: media exposure is the worst outcome)
        reasons = escalation_reasons(values, risk_words)
        if reasons:
            out.append(("severity", "should_be_severe", {
                "reasons": "；".join(reasons),
                "reasons_en": "; ".join(escalation_reasons(values, risk_words, lang="en"))}))
    return out


class TableCheck:
    """``validate_table`` a batch of rows at a time, in the table's order: what each row gets
    depends only on the rows before it (an id seen before, the years its deadlines fall in),
    so a reader that builds a big sheet's rows a window at a time checks them as it goes
    (issue 17) and gets the findings ``validate_table`` gives, in the same order:
    ``ahead`` + ``head`` + each batch's + ``after``."""

    def __init__(self, table: ComplaintTable, *, now: datetime, settings: Settings | None = None,
                 lang: str = "zh", risk_words: tuple[str, ...] | None = None) -> None:
        self.table = table
        self.now = now
        self.lang = lang
        self.settings = settings or table.settings or DEFAULTS
        # the shop's own escalation words (处理手册) when the reader found them
        if risk_words is None:
            risk_words = table.risk_words if table.risk_words is not None else DEFAULT_RISK_WORDS
        self.risk_words = risk_words
        self.present = frozenset(table.columns)
        self.first_seen: dict[tuple[str | None, str], int] = {}
        self.years: set[int] = set()   # the years business-hour deadlines reach (``holiday_gaps``)
        self._holidays = self.settings.business_hours and self.settings.cn_holidays

    def head(self) -> list[Finding]:
        """The required columns the table lacks."""
        table = self.table
        return [make_finding(table, table.header_row, key, "missing_column", self.lang, cell="")
                for key in REQUIRED if key not in self.present]

    def rows(self, rows: Sequence[SourceRow], dues: Sequence[Deadlines] | None = None) -> list[Finding]:
        """Every finding of ``rows`` (the table's next rows), ordered by row then column."""
        table, lang, cols, first_seen = self.table, self.lang, self.table.columns, self.first_seen
        findings: list[Finding] = []
        for i, row in enumerate(rows):
            found = validate_row(row.values, now=self.now, settings=self.settings, present=self.present,
                                 risk_words=self.risk_words, due=dues[i] if dues is not None else None)
            cid = row.values.get("complaint_id")
            if isinstance(cid, str):
                shop = row.values.get("shop") or table.shop_code
                first = first_seen.setdefault((shop, cid), row.row)
                if first != row.row:
                    found.append(("complaint_id", "duplicate_id", {"value": cid, "first": first}))
            # Row then column as the sheet shows it (the shop may have reordered the columns).
            if len(found) > 1:   # most rows have one finding or none
                found.sort(key=lambda f: (cols.get(f[0], 1_000 + _ORDER.get(f[0], 0))))
            for key, code, fmt in found:
                findings.append(make_finding(table, row.row, key, code, lang, **fmt))
        if self._holidays:
            self.years |= holiday_years(rows, self.settings)
        return findings

    def end(self) -> tuple[list[Finding], list[Finding]]:
        """(the finding that goes ahead of all others, those that go after them): years no
        calendar knows, once per workbook; the cells the reader cut out as too far from any table."""
        table, settings, lang = self.table, self.settings, self.lang
        ahead: list[Finding] = []
        unknown = uncovered_years(self.years, settings.holidays) if self._holidays else []
        if unknown:
            # Once per workbook, ahead of the rows: it concerns every business-hour deadline there.
            log_uncovered(unknown, str(table.path or table.sheet))
            known = builtin_years()
            ahead.append(make_finding(
                SHEET_HOLIDAYS, 1, "holidays", "holidays_unknown", lang, cell="A1",
                years="、".join(map(str, unknown)) if lang == "zh" else ", ".join(map(str, unknown)),
                version=builtin_version(), known=f"{known[0]}–{known[1]}" if known else "—"))
        after = [make_finding(sheet, int(ref.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")), "", "stray_cell", lang,
                              cell=ref, where=ref, value=value)
                 for sheet, ref, value in table.stray_cells]   # cells the reader cut out as too far from any table
        return ahead, after


def validate_table(table: ComplaintTable, *, now: datetime, settings: Settings | None = None,
                   lang: str = "zh", risk_words: tuple[str, ...] | None = None,
                   dues: Sequence[Deadlines] | None = None) -> list[Finding]:
    """Every finding of every row, ordered by row then column, plus missing required columns.

    ``settings`` defaults to the workbook's own 设置 sheet (read with the table), so the add-in,
    the CLI and the daemon apply the same shop's deadlines and business hours. ``dues``: each
    row's deadlines under those settings (``table_dues``), when the caller needs them too.
    """
    check = TableCheck(table, now=now, settings=settings, lang=lang, risk_words=risk_words)
    findings = check.head() + check.rows(table.rows, dues)
    ahead, after = check.end()
    return ahead + findings + after


def table_dues(table: ComplaintTable) -> list[Deadlines]:
    """Each row's deadlines under its workbook's 设置: worked out once for both the checks and
    the store when the daemon reads a shop's file (``validate_tables``, ``codec.prepare``)."""
    settings = table.settings or DEFAULTS
    return [deadlines(row.values, settings) for row in table.rows]


def validate_tables(tables: list[ComplaintTable], *, now: datetime, lang: str = "zh",
                    dues: Sequence[Sequence[Deadlines]] | None = None) -> list[Finding]:
    """``validate_table`` for every complaint table of one workbook, plus an id that repeats one
    on another table of the same workbook (a sheet copied as a backup is merged twice otherwise);
    ``dues``: each table's ``table_dues``, when the caller has them."""
    findings: list[Finding] = []
    first_seen: dict[tuple[str | None, str], str] = {}
    for n, table in enumerate(tables):
        findings += validate_table(table, now=now, lang=lang, dues=dues[n] if dues is not None else None)
        here: dict[tuple[str | None, str], str] = {}
        for row in table.rows:
            cid = row.values.get("complaint_id")
            if not isinstance(cid, str):
                continue
            key = (row.values.get("shop") or table.shop_code, cid)
            first = first_seen.get(key)
            if first is not None:
                findings.append(make_finding(table, row.row, "complaint_id", "duplicate_id", lang, value=cid,
                                             first=first))
            here.setdefault(key, f"{table.sheet}!{row.row}")
        for key, where in here.items():
            first_seen.setdefault(key, where)
    return findings


def holiday_gaps(table: ComplaintTable, settings: Settings) -> list[int]:
    """Years a business-hour deadline of this table falls in that no calendar knows.

    Only when the shop counts business hours with public holidays: in clock time, or with
    holidays switched off, weekends alone are what the shop asked for.
    """
    if not (settings.business_hours and settings.cn_holidays):
        return []
    return uncovered_years(holiday_years(table.rows, settings), settings.holidays)


def holiday_years(rows: Sequence[SourceRow], settings: Settings) -> set[int]:
    """The years the business-hour deadlines of ``rows`` may fall in."""
    # A deadline runs past its start by the limit in days plus any holiday week: a
    # complaint of 30 December is due in the next year.
    reach = timedelta(days=max(settings.feedback_days, settings.followup_days, 1) * 7 / 5 + 10)
    years: set[int] = set()
    for row in rows:
        for key in ("received_at", "resolved_at"):
            v = row.values.get(key)
            if isinstance(v, datetime):
                years.add(v.year)
                years.add((v + reach).year)
    return years
