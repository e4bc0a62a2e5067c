"""Finding codes as data: stable code -> severity and message in Chinese and English.

Codes are a public contract (JSON output, the 校验结果 sheet, docs/rules.md): add new
ones, never rename. Messages take the field's header and the bad value.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time
from typing import Any

from .model import ComplaintTable, Finding, Severity
from .schema import FIELD_BY_KEY

CODES: dict[str, tuple[Severity, str, str]] = {
    "required": ("error", "“{header}”必须填写", "{header} is required"),
    "missing_column": ("error", "表中缺少必填列“{header}”", "The table has no {header} column"),
    "bad_choice": ("error", "“{header}”的值“{value}”不在下拉列表中（可选：{choices}）",
                   "{header}: '{value}' is not one of the list ({choices})"),
    "bad_datetime": ("error", "“{header}”的值“{value}”不是有效的日期时间",
                     "{header}: '{value}' is not a valid date/time"),
    "bad_number": ("error", "“{header}”的值“{value}”不是有效的金额", "{header}: '{value}' is not a valid amount"),
    "bad_phone": ("error", "“{header}”的值“{value}”不是有效的手机或座机号码",
                  "{header}: '{value}' is not a valid mobile or landline number"),
    "bad_email": ("error", "“{header}”的值“{value}”不是有效的电子邮箱", "{header}: '{value}' is not a valid email"),
    "phone_or_email": ("error", "联系电话和电子邮箱至少填写一项", "Give a phone number or an email"),
    "future_datetime": ("error", "“{header}”（{value}）晚于当前时间", "{header} ({value}) is in the future"),
    "before_received": ("error", "“{header}”（{value}）早于受理时间（{received}）",
                        "{header} ({value}) is before the receipt time ({received})"),
    "followup_before_resolved": ("error", "回访时间（{value}）早于解决时间（{resolved}）",
                                 "Follow-up ({value}) is before resolution ({resolved})"),
    "negative_amount": ("error", "“{header}”不能为负数（{value}）", "{header} cannot be negative ({value})"),
    "foreign_shop": ("error", "本文件属于门店“{own}”，这一行的门店写的是“{value}”：已按“{own}”的投诉合并，"
                     "不会替换其他门店的投诉；若是别的门店的投诉，请移到该门店自己的文件",
                     "This file belongs to shop '{own}' but the row says '{value}': merged as '{own}', "
                     "never replacing another shop's complaint; move it to that shop's own file"),
    "duplicate_id": ("error", "投诉编号“{value}”与第 {first} 行重复", "Complaint ID '{value}' repeats row {first}"),
    "id_too_long": ("error", "投诉编号过长（{length} 个字，最多 128），按无编号处理；请只填编号，说明写在“投诉内容”中",
                    "Complaint ID is too long ({length} characters, at most 128) and is treated as missing: keep "
                    "only the ID here, the text goes to Description"),
    "responsible_missing": ("error", "投诉已成立，必须填写“{header}”", "The complaint is valid: {header} is required"),
    "status_needs_resolved": ("error", "处理状态为“{value}”，但没有解决时间",
                              "Status '{value}' needs a resolved-at time"),
    "status_needs_followup": ("error", "处理状态为“{value}”，但没有回访时间",
                              "Status '{value}' needs a follow-up time"),
    "status_needs_invalid": ("error", "处理状态为“不成立”，但“是否成立”不是“不成立”",
                             "Status is 'not valid' but Valid is not 'not valid'"),
    "invalid_needs_reply": ("error", "投诉不成立时须在“处理方案”中写明给客户的答复",
                            "A complaint judged not valid needs the reply in Resolution plan"),
    "contact_late": ("warning", "首次联系（{value}）晚于联系截止（{due}）",
                     "First contact ({value}) was after the deadline ({due})"),
    "feedback_late": ("warning", "反馈（{value}）晚于反馈截止（{due}）", "Feedback ({value}) was after the deadline ({due})"),
    "followup_late": ("warning", "回访（{value}）晚于回访截止（{due}）", "Follow-up ({value}) was after the deadline ({due})"),
    "holidays_unknown": ("warning", "{years} 年的法定节假日和调休上班日未知：内置日历 chinese-calendar {version} 只含 {known} 年，"
                         "“节假日”表也没有这些年。按工作时间计算的截止时间在这些年只跳过每周休息日；"
                         "请在“节假日”表填写放假和调休上班的日期",
                         "Public holidays and make-up working days of {years} are unknown: the built-in "
                         "chinese-calendar {version} knows {known} and the 节假日 sheet has none, so business-hour "
                         "deadlines there skip weekly rest days only; enter the days on the 节假日 sheet"),
    "severe_not_escalated": ("warning", "严重投诉须上报主管，但“主管批示”为空且状态不是“待批示”",
                             "A severe complaint must go to the manager: no approval and status is not awaiting approval"),
    "should_be_severe": ("warning", "须预警上报（{reasons}），“严重程度”应为“严重”",
                         "Must be escalated ({reasons_en}): Severity should be 'Severe'"),
    "stray_cell": ("warning", "单元格 {where} 远离投诉表，其内容“{value}”未读取；如是误输入请删除",
                   "Cell {where} lies far outside the table; its value {value} was not read: delete it if typed by mistake"),
}

# The columns of the 校验结果 sheet (CLI --mark and the add-in write the same sheet).
FINDINGS_HEADER = ("工作表", "行", "单元格", "字段", "级别", "代码", "说明")
FINDINGS_HEADER_EN = ("Sheet", "Row", "Cell", "Field", "Severity", "Code", "Message")


_NEEDS_CHOICES = frozenset(code for code, (_s, zh, en) in CODES.items() if "{choices}" in zh + en)


def _fmt(value: Any) -> str:
    if type(value) is datetime and value.tzinfo is None and value.year >= 1000:
        # the same text as strftime below, a fifth of its cost: a shop file of 1,000 rows can
        # have 1,700 findings, most naming two moments
        return value.isoformat(" ", "minutes")
    if isinstance(value, (date, time)):   # datetimes too
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def message(code: str, key: str, lang: str = "zh", **fmt: Any) -> str:
    if "choices" in fmt:   # the caller names the choices itself (rare): the template as written
        return _template(code, key, lang, False).format(**{k: _fmt(v) for k, v in fmt.items()})
    template = _template(code, key, lang, True)
    # a shop file of 1,000 rows can have 1,700 findings: the field's name is in the template
    # already, and a message without values is the template itself
    return template.format(**{k: _fmt(v) for k, v in fmt.items()}) if fmt else template.format()


@functools.lru_cache(maxsize=1024)
def _template(code: str, key: str, lang: str, choices: bool) -> str:
    """``code``'s message in ``lang`` with the field's header (and its choices) filled in."""
    _sev, zh, en = CODES[code]
    field = FIELD_BY_KEY.get(key)
    header = (field.zh if lang == "zh" else field.en) if field else key
    known = {"header": header}
    if choices and field and field.choices and code in _NEEDS_CHOICES:
        known["choices"] = "、".join(field.choices) if lang == "zh" else ", ".join(field.choices_en)
    template = zh if lang == "zh" else en
    for name, value in known.items():   # braces in a value stay text when the rest is formatted
        template = template.replace("{" + name + "}", value.replace("{", "{{").replace("}", "}}"))
    return template


def make_finding(table_or_sheet: ComplaintTable | str, row: int, key: str, code: str, lang: str = "zh",
                 *, cell: str | None = None, **fmt: Any) -> Finding:
    """A finding for field ``key`` on Excel row ``row``; the A1 cell comes from the table.

    Pass a sheet name and ``cell=`` when there is no table (e.g. the merged workbook).
    """
    if isinstance(table_or_sheet, ComplaintTable):
        sheet = table_or_sheet.sheet
        cell = table_or_sheet.cell(key, row) if cell is None else cell
    else:
        sheet = table_or_sheet
    return Finding(sheet=sheet, row=row, cell=cell or "", field=key, severity=CODES[code][0], code=code,
                   message=message(code, key, lang, **fmt))


def codes_markdown() -> str:
    """The table of codes for docs/rules.md (a test checks the doc contains it)."""
    lines = ["| code | severity | 中文 | English |", "|---|---|---|---|"]
    for code, (sev, zh, en) in CODES.items():
        lines.append(f"| `{code}` | {sev} | {zh} | {en} |")
    return "\n".join(lines)
