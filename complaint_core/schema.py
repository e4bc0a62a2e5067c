"""The complaint record schema: one place, as data.

Everything that talks about a complaint column (the template, the reader's header
matching, the validator, the dropdown lists, the merged workbook and the generated docs)
reads this table. Add or change a column here and nowhere else.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

FieldType = Literal["text", "datetime", "choice", "money"]


@dataclass(frozen=True, slots=True)
class Field:
    key: str
    zh: str
    en: str
    type: FieldType
    required: bool = False
    choices: tuple[str, ...] = ()
    # English spellings accepted on input for each choice, same order as ``choices``.
    choices_en: tuple[str, ...] = ()
    help_zh: str = ""
    help_en: str = ""
    width: float = 14
    # Columns the product fills in (suggestions, deadlines); a person may overwrite them.
    filled: bool = False
    # Columns a manager owns in the merged workbook; kept across every re-merge.
    manager_owned: bool = False

    def header(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en


CHANNELS = ("现场", "电话", "信函", "留言", "邮件", "网络平台", "第三方转办")
CHANNELS_EN = ("On-site", "Phone", "Letter", "Message", "Email", "Online platform", "Third party")
CATEGORIES = ("商品质量", "服务态度", "服务质量", "价格计费", "承诺未兑现", "售后维修", "骚扰来电", "其他")
CATEGORIES_EN = (
    "Product quality", "Service attitude", "Service quality", "Price/billing",
    "Broken promise", "After-sales repair", "Harassment call", "Other",
)
# A harassment call (骚扰电话, seed 001 第四篇 五) is logged but is not a complaint: no contact or
# feedback deadline, no penalty, counted apart on 汇总.
HARASSMENT = "骚扰来电"
REQUESTS = ("解释说明", "纠正改进", "道歉", "退款", "维修更换", "赔偿补偿", "其他")
REQUESTS_EN = ("Explanation", "Correction", "Apology", "Refund", "Repair/replace", "Compensation", "Other")
MOODS = ("平静", "不满", "激动", "愤怒")
MOODS_EN = ("Calm", "Dissatisfied", "Agitated", "Angry")
CUSTOMER_TYPES = ("一般", "感情用事型", "滥用正义感型", "固执己见型", "自我陶醉型", "有备而来型", "有社会背景型")
CUSTOMER_TYPES_EN = (
    "Ordinary", "Emotional", "Self-righteous", "Stubborn", "Self-absorbed", "Came prepared",
    "Connected",
)
# 诉求判断 picks the persuasion technique (seed 001 第四篇 三、): 超出规定 -> 7+1说服法 and 三明治法,
# 误解政策 -> 3F法.
REQUEST_FITS = ("合理", "部分合理", "超出规定", "误解政策")
REQUEST_FITS_EN = ("Reasonable", "Partly reasonable", "Beyond policy", "Misunderstands policy")
# 客户对方案: 不接受 -> 谅解法, 三明治法, 引导征询法.
PLAN_RESPONSES = ("接受", "不接受", "待答复")
PLAN_RESPONSES_EN = ("Accepted", "Rejected", "Awaiting reply")
SEVERITIES = ("一般", "较重", "严重")
SEVERITIES_EN = ("Minor", "Serious", "Severe")
VALIDITIES = ("待判定", "成立", "不成立")
VALIDITIES_EN = ("Pending", "Valid", "Not valid")
ROOT_CAUSES = ("员工原因", "企业原因", "外部原因", "客户原因", "待查")
ROOT_CAUSES_EN = ("Staff", "Company", "External", "Customer", "Under investigation")
FOLLOWUP_METHODS = ("电话", "邮件", "信函", "上门", "短信")
FOLLOWUP_METHODS_EN = ("Phone", "Email", "Letter", "Visit", "SMS")
SATISFACTION = ("非常满意", "满意", "一般", "不满意", "非常不满意")
SATISFACTION_EN = ("Very satisfied", "Satisfied", "Neutral", "Dissatisfied", "Very dissatisfied")
STATUSES = ("新建", "处理中", "待批示", "已解决", "已回访", "已关闭", "不成立")
STATUSES_EN = ("New", "In progress", "Awaiting approval", "Resolved", "Followed up", "Closed", "Not valid")


def _f(key: str, zh: str, en: str, type_: FieldType, **kw: Any) -> Field:
    return Field(key, zh, en, type_, **kw)


# A complaint id longer than this is text pasted into the wrong column: the row is kept and
# matched as one without an id (validate: id_too_long). The id is part of every key the store
# indexes, and PostgreSQL refuses an index entry past 2,704 bytes: one such paste stopped a
# whole merge there.
MAX_ID_CHARS = 128
# A shop code (设置, or what most rows say in 门店) longer than this is not taken for one: the
# folder names the shop instead.
MAX_SHOP_CHARS = 64

FIELDS: tuple[Field, ...] = (
    _f("complaint_id", "投诉编号", "Complaint ID", "text", width=18,
       help_zh="门店内唯一；留空时由加载项按“门店代码-日期-序号”生成",
       help_en="Unique within a shop; left empty, the add-in fills shop code, date and sequence"),
    _f("shop", "门店", "Shop", "text", width=10,
       help_zh="留空时取本工作簿设置中的门店代码", help_en="Defaults to the workbook's shop code"),
    _f("received_at", "受理时间", "Received at", "datetime", required=True, width=17,
       help_zh="收到投诉的日期时间；不能晚于现在", help_en="When the complaint was received; not in the future"),
    _f("received_by", "受理人", "Received by", "text", required=True, width=10,
       help_zh="第一人负责制：谁受理谁负责到底", help_en="First-person responsibility: whoever receives it owns it"),
    _f("channel", "投诉渠道", "Channel", "choice", required=True, choices=CHANNELS, choices_en=CHANNELS_EN,
       width=11, help_zh="客户通过什么渠道投诉", help_en="How the complaint reached the shop"),
    _f("customer_name", "客户姓名", "Customer name", "text", required=True, width=10,
       help_zh="客户姓名或称呼", help_en="Customer's name"),
    _f("customer_phone", "联系电话", "Phone", "text", width=15,
       help_zh="手机或座机；填了电子邮箱时可不填", help_en="Mobile or landline; optional when an email is given"),
    _f("customer_email", "电子邮箱", "Email", "text", width=20,
       help_zh="填写时须为有效邮箱地址", help_en="A valid address when given"),
    _f("subject", "投诉对象", "Subject", "text", width=14,
       help_zh="涉及的商品、服务或员工", help_en="Product, service or staff member concerned"),
    _f("category", "投诉类别", "Category", "choice", required=True, choices=CATEGORIES,
       choices_en=CATEGORIES_EN, width=11,
       help_zh="投诉的类别；骚扰来电只登记，不计时限、不处罚",
       help_en="What the complaint is about; a harassment call is logged only: no deadlines, no penalty"),
    _f("description", "投诉内容", "Description", "text", required=True, width=36,
       help_zh="客户说了什么：何时、对谁、发生了什么", help_en="What happened, in the customer's words"),
    _f("customer_request", "客户诉求", "Customer request", "choice", choices=REQUESTS,
       choices_en=REQUESTS_EN, width=11, help_zh="客户希望得到什么", help_en="What the customer asks for"),
    _f("customer_mood", "客户情绪", "Mood", "choice", choices=MOODS, choices_en=MOODS_EN, width=9,
       help_zh="受理时客户的情绪", help_en="The customer's mood when received"),
    _f("customer_type", "客户类型", "Customer type", "choice", choices=CUSTOMER_TYPES,
       choices_en=CUSTOMER_TYPES_EN, width=13, help_zh="难应付客户的类型", help_en="Difficult-customer type"),
    _f("request_fit", "诉求判断", "Request assessment", "choice", choices=REQUEST_FITS,
       choices_en=REQUEST_FITS_EN, width=11,
       help_zh="客户的要求是否合理：超出规定用7+1说服法和三明治法，误解政策用3F法",
       help_en="Is the request within policy: beyond policy picks 7+1 and sandwich, a misunderstanding picks 3F"),
    _f("severity", "严重程度", "Severity", "choice", choices=SEVERITIES, choices_en=SEVERITIES_EN, width=9,
       help_zh="严重：有媒体曝光、法律或安全风险，须上报主管",
       help_en="Severe: media, legal or safety risk; escalate to the manager"),
    _f("validity", "是否成立", "Valid", "choice", choices=VALIDITIES, choices_en=VALIDITIES_EN, width=9,
       help_zh="判定投诉是否成立", help_en="Whether the complaint is valid"),
    _f("responsible_dept", "责任部门", "Responsible dept", "text", width=11,
       help_zh="投诉成立后必填", help_en="Required once the complaint is valid"),
    _f("responsible_person", "责任人", "Responsible person", "text", width=10,
       help_zh="投诉成立后必填", help_en="Required once the complaint is valid"),
    _f("root_cause", "原因分类", "Root cause", "choice", choices=ROOT_CAUSES, choices_en=ROOT_CAUSES_EN,
       width=11, help_zh="员工、企业、外部或客户自身原因", help_en="Staff, company, external or customer"),
    _f("resolution_plan", "处理方案", "Resolution plan", "text", width=30,
       help_zh="退款、维修更换、道歉、补偿等；不成立时写明给客户的答复",
       help_en="Refund, repair, apology, compensation; when not valid, the reply given"),
    _f("plan_response", "客户对方案", "Response to the plan", "choice", choices=PLAN_RESPONSES,
       choices_en=PLAN_RESPONSES_EN, width=11,
       help_zh="客户是否接受处理方案：不接受时用谅解法、三明治法、引导征询法",
       help_en="Did the customer accept the plan: rejected picks understanding, sandwich, guided asking"),
    _f("manager_approval", "主管批示", "Manager approval", "text", width=20, manager_owned=True,
       help_zh="主管在汇总表中填写，重新汇总时保留", help_en="Filled by managers in the merged workbook; kept"),
    _f("first_contact_at", "首次联系时间", "First contact at", "datetime", width=17,
       help_zh="第一次与客户电话联系的时间；须在受理后2小时内",
       help_en="First phone contact; due within 2 hours of receipt"),
    _f("feedback_at", "反馈时间", "Feedback at", "datetime", width=17,
       help_zh="向客户反馈进度或结果的时间；须在3日内", help_en="Progress or result fed back; due within 3 days"),
    _f("resolved_at", "解决时间", "Resolved at", "datetime", width=17,
       help_zh="问题解决的时间", help_en="When the complaint was resolved"),
    _f("followup_at", "回访时间", "Follow-up at", "datetime", width=17,
       help_zh="解决后回访客户的时间", help_en="Follow-up after resolution"),
    _f("followup_method", "回访方式", "Follow-up method", "choice", choices=FOLLOWUP_METHODS,
       choices_en=FOLLOWUP_METHODS_EN, width=9, help_zh="电话、邮件、信函、上门或短信",
       help_en="Phone, email, letter, visit or SMS"),
    _f("satisfaction", "客户满意度", "Satisfaction", "choice", choices=SATISFACTION,
       choices_en=SATISFACTION_EN, width=11, help_zh="回访时客户的满意度", help_en="Satisfaction at follow-up"),
    _f("loss_amount", "损失金额", "Loss amount", "money", width=11,
       help_zh="造成的损失（元），不小于0", help_en="Loss caused, in yuan, >= 0"),
    _f("compensation_amount", "补偿金额", "Compensation", "money", width=11,
       help_zh="给客户的补偿（元），不小于0", help_en="Compensation given, in yuan, >= 0"),
    _f("status", "处理状态", "Status", "choice", choices=STATUSES, choices_en=STATUSES_EN, width=10,
       help_zh="已解决须有解决时间；已回访、已关闭须有解决和回访时间",
       help_en="Resolved needs resolved-at; followed up and closed need resolved-at and follow-up-at"),
    _f("suggested_steps", "建议处理步骤", "Suggested steps", "text", width=48, filled=True,
       help_zh="由加载项按处理手册填写，可修改", help_en="Filled from the playbook by the add-in; editable"),
    _f("contact_due", "联系截止", "Contact due", "datetime", width=17, filled=True,
       help_zh="默认受理后2小时", help_en="Received + 2 hours by default"),
    _f("feedback_due", "反馈截止", "Feedback due", "datetime", width=17, filled=True,
       help_zh="默认受理后3天", help_en="Received + 3 days by default"),
    _f("followup_due", "回访截止", "Follow-up due", "datetime", width=17, filled=True,
       help_zh="解决后3天内回访", help_en="Resolved + 3 days by default"),
    _f("notes", "备注", "Notes", "text", width=20, help_zh="其他说明", help_en="Anything else"),
    _f("updated_at", "最后更新", "Updated at", "datetime", width=17,
       help_zh="由加载项盖章；两份版本冲突时以此为准", help_en="Stamped by the add-in; breaks ties between versions"),
)

FIELD_BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}
KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS)
DATETIME_KEYS = frozenset(f.key for f in FIELDS if f.type == "datetime")
MONEY_KEYS = frozenset(f.key for f in FIELDS if f.type == "money")
CHOICE_KEYS = frozenset(f.key for f in FIELDS if f.type == "choice")
TEXT_KEYS = frozenset(f.key for f in FIELDS if f.type == "text")
FILLED_KEYS = tuple(f.key for f in FIELDS if f.filled)

# Sheet names the staff workbook uses (the template makes them; the reader looks for them).
SHEET_COMPLAINTS = "投诉登记"
SHEET_LISTS = "下拉列表"
SHEET_PLAYBOOK = "处理手册"
SHEET_HOWTO = "使用说明"
SHEET_FINDINGS = "校验结果"
# Hidden: the add-in writes 2 (error) / 1 (warning) at each bad cell's address; the template's
# conditional formats colour the complaint table from it (no per-cell or COM formatting calls).
SHEET_MARKS = "_校验标记"
# Settings area: a two-column sheet (项目 | 值). Row "门店代码" / "Shop code" holds the shop code;
# other rows may hold any key of complaint_core.settings.SETTINGS by its Chinese name.
SHEET_SETTINGS = "设置"
SETTINGS_SHOP_LABELS = ("门店代码", "Shop code", "shop_code")
TABLE_NAME = "投诉表"


def normalise_header(text: object) -> str:
    """Fold a header cell so that '受理时间*', ' Received  At ' and full-width forms all match."""
    s = unicodedata.normalize("NFKC", str(text)).strip().lower()
    for ch in " \t\r\n*＊:：_-()（）":
        s = s.replace(ch, "")
    return s


HEADER_ALIASES: dict[str, str] = {}
for _f_ in FIELDS:
    for _name in (_f_.key, _f_.zh, _f_.en):
        HEADER_ALIASES[normalise_header(_name)] = _f_.key


def _choice_map(field: Field) -> dict[str, str]:
    out: dict[str, str] = {}
    for zh, en in zip(field.choices, field.choices_en or field.choices, strict=False):
        out[normalise_header(zh)] = zh
        out[normalise_header(en)] = zh
    return out


# Folded spelling -> canonical Chinese value, built once: choice lookups run for every cell.
_CHOICE_MAPS: dict[str, dict[str, str]] = {f.key: _choice_map(f) for f in FIELDS if f.choices}


def choice_value(field: Field, value: str) -> str | None:
    """Map a typed value (Chinese or English, any case/width) to the canonical Chinese choice."""
    if value in field.choices:
        return value  # the common case: picked from the dropdown
    return _CHOICE_MAPS.get(field.key, {}).get(normalise_header(value))
