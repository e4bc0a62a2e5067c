"""Build the staff's complaint workbook from the schema (templates/complaint_form.xlsx).

Everything comes from ``schema.FIELDS``, ``settings.SETTINGS`` and the playbook, so the
template, the validator and the docs cannot drift apart. Dropdown lists live on a hidden
sheet (Excel silently drops inline lists longer than 255 characters).
"""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import quote_sheetname
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.table import Table, TableStyleInfo

from .atomic import atomic_write
from .holidays import SHEET_HOLIDAYS, holiday_rows_for_template
from .model import column_letter
from .playbook import DEFAULT_PLAYBOOK, Playbook, playbook_rows
from .playbook import KINDS as PLAYBOOK_KINDS
from .schema import (
    FIELDS,
    SHEET_COMPLAINTS,
    SHEET_HOWTO,
    SHEET_LISTS,
    SHEET_MARKS,
    SHEET_PLAYBOOK,
    SHEET_SETTINGS,
    TABLE_NAME,
)
from .settings import SETTINGS

TABLE_ROWS = 200          # pre-sized rows; Excel grows the table as staff type below it
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
MONEY_FORMAT = '"¥"#,##0.00'
HEADER_FILL = PatternFill("solid", fgColor="FF1F4E78")
OVERDUE_FILL = PatternFill("solid", fgColor="FFFFC7CE")
MISSING_FILL = PatternFill("solid", fgColor="FFFFEB9C")
MARK_FILLS = ((2, PatternFill("solid", fgColor="FFFF9999")), (1, PatternFill("solid", fgColor="FFFFE699")))
# The marks rules cover more columns than the schema has (shops add and reorder columns) and
# every row Excel has, so a table that grew past the pre-sized rows is still coloured.
MARK_COLUMNS = 80
# Each deadline is overdue while its matching "done" time is still empty.
DEADLINE_PAIRS = (("contact_due", "first_contact_at"), ("feedback_due", "feedback_at"),
                  ("followup_due", "followup_at"))


def number_format(kind: str) -> str:
    return {"datetime": DATETIME_FORMAT, "money": MONEY_FORMAT, "text": "@"}.get(kind, "General")


def _howto_rows(lang: str) -> list[list[str]]:
    zh = [
        ["投诉台账使用说明", ""],
        ["1. 每条投诉在“投诉登记”表中占一行；带 * 的列必须填写，黄色表示必填未填。", ""],
        ["2. 带下拉箭头的列请从列表中选择（也接受英文）。", ""],
        ["3. 点击 Excel 功能区“投诉处理”选项卡：校验 检查每一行并在“校验结果”表列出问题；"
         "填写建议 按“处理手册”填写建议处理步骤和截止时间；新建投诉 添加一行并生成编号。", ""],
        ["4. 时限：受理后2小时内电话联系客户；3日内反馈处理进度或结果；解决后回访。截止时间变红表示已逾期。", ""],
        ["5. “处理手册”表：每种情形用什么技巧、对客户说什么（话术）、要避免什么；六步法、服务补救和常见错误行为的全文"
         "也在这张表。本店可改写话术和“风险词”（出现即须预警上报的词，如记者、曝光、12315），建议会随之变化。", ""],
        ["6. 填好“诉求判断”（超出规定、误解政策）和“客户对方案”（不接受），建议会给出对应的技巧和话术。", ""],
        ["7. 骚扰来电：投诉类别选“骚扰来电”，只登记、转单独处理，不计时限、不处罚，汇总表单独统计。", ""],
        ["8. 按工作时间计算截止时间的门店：在“节假日”表逐日填写放假（休息）和调休上班（上班）的日期，优先于内置日历。", ""],
        ["9. 在“设置”表填写本店门店代码。", ""],
        ["", ""],
        ["列", "说明"],
    ]
    en = [
        ["How to use the complaint workbook", ""],
        ["1. One complaint per row on the 投诉登记 sheet; yellow marks a required cell left empty.", ""],
        ["2. Pick list values from the dropdowns (English is accepted too).", ""],
        ["3. Excel ribbon tab 投诉处理: 校验 checks every row; 填写建议 fills suggested steps and "
         "deadlines from the playbook; 新建投诉 adds a row with a fresh id.", ""],
        ["4. Deadlines: phone the customer within 2 hours, feed back within 3 days, follow up after "
         "resolution. A red deadline is overdue.", ""],
        ["5. The 处理手册 playbook sheet: for each situation the technique, what to say and what to avoid; the "
         "six steps, service recovery and the wrong behaviours in full. Edit the phrases and the 风险词 "
         "(escalation words such as 记者, 曝光, 12315) to fit the shop; suggestions follow it.", ""],
        ["6. Fill Request assessment (beyond policy, misunderstands policy) and Response to the plan "
         "(rejected): the suggestion gives the technique and the sentence for them.", ""],
        ["7. Harassment calls: category 骚扰来电, logged and handled apart; no deadlines, no penalty, "
         "counted apart on the summary.", ""],
        ["8. Shops counting business hours: list days off (休息) and make-up working days (上班) on the "
         "节假日 sheet, one per row; they win over the built-in calendar.", ""],
        ["9. Put the shop code on the 设置 sheet.", ""],
        ["", ""],
        ["Column", "Meaning"],
    ]
    rows = zh + [["", ""]] + en if lang == "zh" else en + [["", ""]] + zh
    for f in FIELDS:
        rows.append([f"{f.zh} / {f.en}" + (" *" if f.required else ""), f"{f.help_zh} / {f.help_en}"])
    return rows


def build_workbook(*, shop_code: str = "", lang: str = "zh",
                   playbook: Playbook = DEFAULT_PLAYBOOK) -> Workbook:
    wb = Workbook()
    ws = wb.worksheets[0]   # a new workbook's one sheet
    ws.title = SHEET_COMPLAINTS
    last_row = TABLE_ROWS + 1
    letters = {f.key: column_letter(i) for i, f in enumerate(FIELDS)}

    for i, f in enumerate(FIELDS, start=1):
        cell = ws.cell(row=1, column=i, value=f.header(lang))
        cell.font = Font(bold=True, color="FFFFFFFF")
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        ws.column_dimensions[column_letter(i - 1)].width = f.width
        fmt = number_format(f.type if f.type != "choice" else "text")
        for r in range(2, last_row + 1):
            ws.cell(row=r, column=i).number_format = fmt
            if f.key == "suggested_steps":
                ws.cell(row=r, column=i).alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "A2"
    table = Table(displayName=TABLE_NAME, ref=f"A1:{column_letter(len(FIELDS) - 1)}{last_row}")
    table.tableStyleInfo = TableStyleInfo(name="TableStyleMedium2", showRowStripes=True)
    ws.add_table(table)

    lists = wb.create_sheet(SHEET_LISTS)
    lists.sheet_state = "hidden"
    choice_fields = [f for f in FIELDS if f.choices]
    for j, f in enumerate(choice_fields, start=1):
        col = column_letter(j - 1)
        lists.cell(row=1, column=j, value=f.zh)
        for r, value in enumerate(f.choices, start=2):
            lists.cell(row=r, column=j, value=value)
        name = f"list_{f.key}"
        ref = f"{quote_sheetname(SHEET_LISTS)}!${col}$2:${col}${len(f.choices) + 1}"
        wb.defined_names[name] = DefinedName(name, attr_text=ref)
        dv = DataValidation(type="list", formula1=f"={name}", allow_blank=True, showErrorMessage=False)
        dv.promptTitle = f.zh[:32]
        dv.prompt = f.help_zh[:255]
        dv.showInputMessage = bool(f.help_zh)
        dv.add(f"{letters[f.key]}2:{letters[f.key]}{last_row}")
        ws.add_data_validation(dv)

    for due, done in DEADLINE_PAIRS:
        d, k = letters[due], letters[done]
        ws.conditional_formatting.add(
            f"{d}2:{d}{last_row}",
            FormulaRule(formula=[f'AND(${d}2<>"",${d}2<NOW(),${k}2="")'], fill=OVERDUE_FILL, stopIfTrue=False))
    started = f'OR(${letters["received_at"]}2<>"",${letters["description"]}2<>"")'
    for f in FIELDS:
        if f.required:
            c = letters[f.key]
            ws.conditional_formatting.add(
                f"{c}2:{c}{last_row}",
                FormulaRule(formula=[f'AND({started},LEN(TRIM(${c}2))=0)'], fill=MISSING_FILL))

    marks_area = f"A2:{column_letter(MARK_COLUMNS - 1)}1048576"
    for level, fill in MARK_FILLS:
        ws.conditional_formatting.add(marks_area, FormulaRule(
            formula=[f"{quote_sheetname(SHEET_MARKS)}!A2={level}"], fill=fill, stopIfTrue=False))

    pb = wb.create_sheet(SHEET_PLAYBOOK)
    for row in playbook_rows(playbook):
        pb.append(row)
    for col, width in zip("ABCDEFGHI", (8, 12, 20, 16, 60, 44, 30, 40, 40), strict=True):
        pb.column_dimensions[col].width = width
    for row in pb.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    # 类型 from a list, so a shop adding a row cannot mistype it
    kinds = DataValidation(type="list", formula1='"' + ",".join(PLAYBOOK_KINDS) + '"', allow_blank=True)
    kinds.add(f"A2:A{pb.max_row + 100}")
    pb.add_data_validation(kinds)
    for cell in pb[1]:
        cell.font = Font(bold=True)
    pb.freeze_panes = "A2"

    howto = wb.create_sheet(SHEET_HOWTO)
    for row in _howto_rows(lang):
        howto.append(row)
    howto.column_dimensions["A"].width = 40
    howto.column_dimensions["B"].width = 90
    howto["A1"].font = Font(bold=True, size=14)

    st = wb.create_sheet(SHEET_SETTINGS)
    st.append(["项目", "值", "说明"])
    st.append(["门店代码", shop_code, "本店代码，用于投诉编号和汇总 / Shop code"])
    for s in SETTINGS:
        if s.key == "shop_code":
            continue
        value = s.default
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "是" if value else "否"
        elif hasattr(value, "strftime"):
            value = value.strftime("%H:%M")
        st.append([s.zh, value, f"{s.help_zh} / {s.help_en}"])
    for row in st.iter_rows(min_row=2, max_col=2):
        row[1].number_format = "@"
        if isinstance(row[1].value, int | float):
            row[1].number_format = "General"
    st.column_dimensions["A"].width = 20
    st.column_dimensions["B"].width = 16
    st.column_dimensions["C"].width = 80
    for cell in st[1]:
        cell.font = Font(bold=True)

    hol = wb.create_sheet(SHEET_HOLIDAYS)
    for row in holiday_rows_for_template():
        hol.append(row)
    for r in range(2, 400):
        hol.cell(row=r, column=1).number_format = "yyyy-mm-dd"
    dv = DataValidation(type="list", formula1='"休息,上班"', allow_blank=True)
    dv.add("B2:B400")
    hol.add_data_validation(dv)
    for col, width in zip("ABC", (14, 10, 80), strict=True):
        hol.column_dimensions[col].width = width
    for cell in hol[1]:
        cell.font = Font(bold=True)
    hol.freeze_panes = "A2"

    marks = wb.create_sheet(SHEET_MARKS)
    marks.sheet_state = "hidden"
    return wb


def build_template(path: str | Path, *, shop_code: str = "", lang: str = "zh") -> Path:
    """Write a fresh complaint workbook to ``path`` atomically."""
    wb = build_workbook(shop_code=shop_code, lang=lang)
    with atomic_write(path) as tmp:
        wb.save(tmp)
    return Path(path)
