"""The handling playbook (处理手册) as data: which technique and which sentence fit which complaint.

Distilled from the shop's training material (the five texts in the training folder): the
techniques by situation with the sentences they give (话术, seed 001 第四篇 三、), the wrong
behaviours (seeds 000 and 003), the escalation path (seed 004), harassment calls (seed 001 第四篇
五) and, for reference, the six-step method and service recovery. The template writes it to the
处理手册 sheet; a shop edits the phrases and the escalation words there and the suggestions
follow its edits.

Each row has a kind (类型):
- 技巧: a technique for a situation with a sentence to say; a suggestion shows the first one or
  two that fit (row order is priority: feelings first, then the matter). A 技巧 row without a
  column is the fallback, used only when no other 技巧 row fits.
- 方案: what to say about the remedy the customer asked for (not when the complaint is judged
  不成立 or the request is beyond or misreads the rules: then nothing is promised).
- 避免: the wrong behaviour to watch for in this situation; the first that fits is shown.
- 上报: the escalation path (预警上报), used when escalation.escalation_reasons fires.
- 骚扰: how to handle a harassment call (投诉类别 骚扰来电).
- 风险词: words in the description or request that call for escalation (media, legal, regulator).
- 参考: the full six-step method, service recovery and the wrong behaviours, shown on the sheet
  and referred to by name, never repeated in each suggestion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import BadSetting
from .escalation import DEFAULT_RISK_WORDS
from .schema import FIELD_BY_KEY, SHEET_PLAYBOOK, choice_value, normalise_header

HEADER = ("类型", "适用列", "适用值（用、分隔）", "名称", "做法", "话术（可照着对客户说）", "依据（培训材料）",
          "做法（英文）", "话术（英文）")
# The header an earlier version wrote (规则编号 first): such a sheet cannot say which sentence
# to use, so it is read as the built-in playbook (docs/rules.md tells the shop how to move edits).
OLD_HEADER_FIRST = "规则编号"

KINDS = ("技巧", "方案", "避免", "上报", "骚扰", "风险词", "参考")
KINDS_EN = {"technique": "技巧", "remedy": "方案", "avoid": "避免", "escalate": "上报", "harassment": "骚扰",
            "risk words": "风险词", "reference": "参考"}


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str                     # one of KINDS
    field: str | None             # field key; None = any complaint
    values: frozenset[str]        # canonical Chinese values that make the row fit
    name: str                     # technique or topic name, as a clerk knows it ("3F法")
    action: str                   # what to do
    say: str = ""                 # a sentence the clerk can say to the customer
    source: str = ""              # where in the training texts
    action_en: str = ""
    say_en: str = ""

    def applies(self, row: dict[str, Any]) -> bool:
        return self.field is None or row.get(self.field) in self.values


@dataclass(frozen=True, slots=True)
class Playbook:
    rules: tuple[Rule, ...]

    def of(self, kind: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.kind == kind)

    @property
    def risk_words(self) -> tuple[str, ...]:
        """The shop's escalation words: every 风险词 row; the built-in list when there is none."""
        rows = self.of("风险词")
        if not rows:
            return DEFAULT_RISK_WORDS
        return tuple(dict.fromkeys(w for r in rows for w in split_values(r.action)))


def split_values(text: str) -> list[str]:
    """'a、b，c,d' -> ['a', 'b', 'c', 'd']: shops type any of these separators."""
    for sep in (",", "，", ";", "；", "/", "\n"):
        text = text.replace(sep, "、")
    return [p.strip() for p in text.split("、") if p.strip()]


def _r(kind: str, field: str | None, values: str, name: str, action: str, say: str, source: str,
       action_en: str = "", say_en: str = "") -> Rule:
    return Rule(kind, field, frozenset(split_values(values)), name, action, say, source, action_en, say_en)


SANDWICH_SAY = "我们可以为您……；您也可以……"
SANDWICH_SAY_EN = "What we can do for you is …; what you can do is …"

DEFAULT_PLAYBOOK = Playbook((
    # 技巧: order is priority. Feelings first, then the matter (先处理感情，后处理事情).
    _r("技巧", "customer_mood", "激动、愤怒", "移情法",
       "请客户到安静处，耐心听完不打断，先安抚情绪再谈事情。",
       "我理解您为什么会有这样的感受，这件事由我负责为您解决。",
       "移情法：客户情绪激动、正在发泄时；承担责任：向客户保证你将负责替他解决问题，用“我”不用“我们”",
       "Empathy: take them somewhere quiet, listen without interrupting, calm the feeling before the matter.",
       "I understand why you feel this way, and I will personally see this through for you."),
    _r("技巧", "validity", "不成立", "三明治法",
       "婉转答复、消除误会，不提补偿；先说我们能做什么，再说客户可以做什么，不说生硬的“不”。",
       SANDWICH_SAY,
       "处理流程第2步：投诉不成立时以婉转的方式答复客户，取得谅解，消除误会；三明治法",
       "Not valid: answer tactfully and clear up the misunderstanding, offer no compensation; say what we "
       "can do, then what the customer can do; never a bare 'no'.",
       SANDWICH_SAY_EN),
    _r("技巧", "plan_response", "不接受", "谅解法、三明治法、引导征询法",
       "以同意取代反对，再给可选的做法，并问客户希望怎样解决。",
       "我很同意您的观点，同时我们考虑到……。我们可以……，您也可以……。您希望我们怎样处理？",
       "谅解法、三明治法、引导征询法：客户对解决方案不满意时；避免说“您说得很有道理，但是……”",
       "Plan rejected (understanding, sandwich, guided asking): agree instead of opposing, offer choices, "
       "ask what they want.",
       "I quite agree with you, and we also need to consider … We can …, and you can … How would you "
       "like us to handle it?"),
    _r("技巧", "satisfaction", "不满意、非常不满意", "深度回访",
       "回访时客户仍不满意：再次联系，问清方案是否落实、是否有用、还有什么问题，重新商定方案并报主管批示。",
       "上次的处理方案落实了吗？对您有用吗？还有其他问题吗？",
       "六步法第6步：跟踪服务，了解解决方案是否得到执行、是否有用、是否还有其他问题；得到暂时解决后要深度回访和关注",
       "Still dissatisfied at follow-up: call again, ask whether the plan was carried out, whether it helped, "
       "what else is wrong; agree a new plan for approval.",
       "Was the plan carried out? Did it help? Is anything else wrong?"),
    _r("技巧", "request_fit", "超出规定", "7+1说服法、三明治法",
       "分段说明商品或服务的规定，结合客户自己的体验取得认同；超出权限找有权限的人；"
       "不能满足的部分不说生硬的“不”，说我们能做什么、客户可以做什么。",
       SANDWICH_SAY,
       "7+1说服法：客户的要求超出企业规定时；六步法第5步：向客户道歉并表明诚意，提供其他选择",
       "Beyond policy (7+1, sandwich): explain the rule part by part against the customer's own "
       "experience; beyond your authority, find who has it; for what cannot be done, the sandwich.",
       SANDWICH_SAY_EN),
    _r("技巧", "request_fit", "误解政策", "3F法",
       "先认同客户的感受，再说明规定对客户的好处。",
       "我理解您为什么会有这样的感受，其他客户也曾经有过同样的感受，不过经过说明后，"
       "他们发觉这种规定是保护他们的利益，您也考虑一下好吗？",
       "3F法：不完全了解产品和服务就投诉的客户（Feel、Felt、Found）",
       "Misunderstood policy (feel, felt, found): acknowledge the feeling, then show how the rule protects them.",
       "I understand why you feel this way; other customers have felt the same, but once it was explained "
       "they found the rule protects them. Would you consider it too?"),
    _r("技巧", "root_cause", "客户原因", "3F法",
       "先认同客户的感受，再说明规定对客户的好处。",
       "我理解您为什么会有这样的感受，其他客户也曾经有过同样的感受，不过经过说明后，"
       "他们发觉这种规定是保护他们的利益，您也考虑一下好吗？",
       "3F法：不完全了解产品和服务就投诉的客户；客户的原因：不正确地理解保修条款、对产品操作不当",
       "Misunderstood policy (feel, felt, found): acknowledge the feeling, then show how the rule protects them.",
       "I understand why you feel this way; other customers have felt the same, but once it was explained "
       "they found the rule protects them. Would you consider it too?"),
    _r("技巧", "customer_type", "感情用事型", "移情法",
       "保持镇定，让客户发泄，表示理解，先安抚情绪。",
       "我理解您为什么会有这样的感受，这件事由我负责为您解决。",
       "难应付客户：感情用事者；移情法",
       "Emotional customer: stay calm, let them vent, show understanding first.",
       "I understand why you feel this way, and I will personally see this through for you."),
    _r("技巧", "customer_type", "固执己见型、自我陶醉型", "谅解法",
       "以同意取代反对，不与客户争辩，再说明我们的考虑。",
       "我很同意您的观点，同时我们考虑到……",
       "谅解法：以同意取代反对；避免说“您说得很有道理，但是……”",
       "Understanding: agree instead of opposing, never argue, then explain what we must consider.",
       "I quite agree with you, and at the same time we need to consider …"),
    _r("技巧", "customer_type", "滥用正义感型", "道歉及感谢",
       "肯定客户意见的价值，感谢客户指出需要改进的地方，说明改进措施；道歉不是认错。",
       "谢谢您指出这个问题，我们会改进。",
       "六步法第2步：道歉及感谢客户，感谢客户提出了亟待改善的问题",
       "Thank them: an apology is not an admission; thank them for pointing out what to improve.",
       "Thank you for pointing this out; we will put it right."),
    _r("技巧", "customer_type", "有备而来型", "不做过度承诺",
       "客户熟悉规定、可能录音，要先核实事实，按规定办理，只承诺做得到的事，必要时请主管出面。",
       "我先核实情况，在……前给您答复。",
       "不做过度承诺（处理原则）；必要时请上司出面",
       "Came prepared (knows the rules, may record): check the facts, follow the rules, promise only what "
       "you can keep, bring in the manager if needed.",
       "Let me check the facts first; you will have my answer by …"),
    _r("技巧", None, "", "引导征询法",
       "主动询问客户希望的解决方法，在权限内共同商定，写入处理方案并报主管批示。",
       "您希望我们怎样为您解决？",
       "引导征询法：主动了解客户的需求和期望；处理流程第5、6步",
       "Guided asking: ask what solution the customer wants, agree it within your authority, write it in "
       "the plan for approval.",
       "How would you like us to put this right for you?"),
    # 方案: the remedy the customer asked for (六步法第4步 提出解决方案).
    _r("方案", "customer_request", "退款", "退款",
       "若不能马上到账，详细说明退款时间。", "退款会在……前退回您的账户，多谢您的惠顾。",
       "六步法第4步：退款，若客户无法立即拿到退款，要详细解释并告知退款时间",
       "Refund: if it cannot arrive at once, say exactly when.",
       "The refund will reach your account by …; thank you for your custom."),
    _r("方案", "customer_request", "维修更换", "维修更换",
       "约定完成时间；若要延误，在客户询问前通知进展。", "预计……前为您修好（换好），有变化我会先通知您。",
       "六步法第4步：修理或更换产品，若真要延误就要通知客户进展",
       "Repair/replace: agree a date; if it slips, tell them before they ask.",
       "It should be ready by …; if anything changes I will tell you first."),
    _r("方案", "customer_request", "道歉", "道歉",
       "真诚道歉（道歉不是认错），感谢客户提出。", "非常抱歉给您带来不便，谢谢您告诉我们。",
       "六步法第2步：道歉不是认错，而是让客户知道企业很在意他的烦恼",
       "Apology: sincere (not an admission), thank them for telling us.",
       "I am very sorry for the trouble, and thank you for telling us."),
    _r("方案", "customer_request", "赔偿补偿", "补偿性关照",
       "在权限和能承受的范围内给补偿性关照（赠品、折扣、免费服务）。", "为表歉意，我们为您准备了……",
       "六步法第4步：补偿性关照；提供让客户惊喜的补偿",
       "Compensating care within your authority (gift, discount, free service).",
       "To make up for it, we would like to offer you …"),
    _r("方案", "customer_request", "解释说明、纠正改进", "说明与改进",
       "核实事实后讲清原因和将要采取的措施，不打太极。", "情况是这样的：……，我们接下来会……",
       "通过电话平息客户的不满：解释你的观点，讲明将要采取的措施",
       "Check the facts, explain the cause and what will be done; no evasion.",
       "Here is what happened: …, and this is what we will do next: …"),
    # 避免: one wrong behaviour per situation (seeds 000 and 003), first fit wins.
    _r("避免", "customer_mood", "激动、愤怒", "争辩打断", "争辩、争吵、打断客户；认为投诉是针对个人的。", "",
       "处理客户不满的常见错误行为", "Arguing or interrupting; taking the complaint personally."),
    _r("避免", "validity", "不成立", "直接拒绝", "直接拒绝客户、暗示客户有错误。", "",
       "处理客户不满的常见错误行为", "Refusing flatly or implying the customer is at fault."),
    _r("避免", "plan_response", "不接受", "设置障碍", "为解决问题设置障碍，期待客户打退堂鼓；语言含糊、打太极拳。", "",
       "处理客户不满的常见错误行为", "Putting up obstacles so they give up; vague answers."),
    _r("避免", "request_fit", "超出规定", "过度承诺", "直接拒绝客户；答应做不到的事（不做过度承诺）。", "",
       "处理客户不满的常见错误行为；不做过度承诺", "Refusing flatly; promising what cannot be kept."),
    _r("避免", "request_fit", "误解政策", "说教讽刺", "教育、批评、讽刺客户。", "",
       "处理客户不满的常见错误行为", "Lecturing, criticising or mocking the customer."),
    _r("避免", "severity", "较重、严重", "事实未清先担责", "在事实澄清以前便承担责任；拖延或隐瞒。", "",
       "处理客户不满的常见错误行为", "Accepting liability before the facts are clear; delaying or hiding."),
    _r("避免", None, "", "推诿含糊", "责备和批评自己的同事；语言含糊、打太极拳；拖延或隐瞒。", "",
       "处理客户不满的常见错误行为", "Blaming colleagues; vague answers; delaying or hiding."),
    # 上报: seed 004, a car maker's rule: 以不被媒体曝光为最高原则，执行预警控制及上报机制.
    _r("上报", None, "", "预警上报",
       "立即报告主管，按预警上报机制处理，必要时请公关部门介入；先善意安抚，不做过度承诺；严重程度填“严重”。",
       "我马上请我们主管来为您处理。",
       "以不被媒体曝光为最高原则；执行预警控制及上报机制；必要时请上司出面",
       "Tell the manager now and follow the early-warning path, PR if needed; calm them, never over-promise; "
       "set Severity to Severe.",
       "I am asking my manager to handle this for you right away."),
    # 骚扰: seed 001 第四篇 五、骚扰电话的处理.
    _r("骚扰", "category", "骚扰来电", "骚扰来电",
       "用机械而有礼貌的声音结束通话；登记号码和时间，转入单独队列，归类来源和频率，屏蔽并调查来源，"
       "必要时用法律手段。不计时限、不处罚。",
       "您好，您好，听得到吗？对不起线路故障，请稍后再拨。",
       "骚扰电话的处理：识别、立即将来电终止、设立单独队列、屏蔽和调查骚扰源",
       "End the call politely and mechanically; log the number and time in the separate queue, classify "
       "source and frequency, block and trace it, use the law if needed. No deadlines, no penalty.",
       "Hello, hello, can you hear me? Sorry, the line is faulty; please call again later."),
    # 风险词: the shop's list (seed 004: media exposure; 12315 and 消协 are third parties).
    _r("风险词", None, "", "预警上报词", "、".join(DEFAULT_RISK_WORDS), "",
       "投诉内容、客户诉求或备注中出现这些词时须预警上报；本店可增删"),
    # 参考: in full here, referred to by name in each suggestion.
    _r("参考", None, "", "处理投诉六步法",
       "①鼓励客户发泄：请到安静处，听时要有回应，控制自己的脾气；②道歉及感谢：道歉不是认错，感谢客户提出问题；"
       "③提问并了解问题所在：重复确认、做好记录，找出真实需要；④提出解决方案：只提权限内、企业允许的方案"
       "（退款、修理或更换、道歉、补偿性关照）；⑤让客户参与意见：权限不够找有权限的人，超出规定先道歉并提供其他选择；"
       "⑥跟踪服务：打电话、发电子邮件或发信函，了解方案是否执行、是否有用、还有无其他问题。先处理感情，后处理事情。",
       "", "处理投诉六步法", "Six steps: let them vent; apologise and thank; ask and restate; offer a fix within "
       "your authority; involve the customer; follow up by phone, email or letter. Feelings first."),
    _r("参考", None, "", "服务补救五步",
       "①道歉；②紧急复原：消除引起不满的根源；③移情；④象征性赎罪：在能承受的范围内给出超出预期的补偿；⑤跟踪。",
       "", "服务补救：道歉、紧急复原、移情、象征性赎罪和跟踪；提供让客户惊喜的补偿",
       "Service recovery: apologise; restore urgently; empathise; symbolic atonement beyond expectation; "
       "follow up."),
    _r("参考", None, "", "常见错误行为",
       "争辩、争吵、打断客户；教育、批评、讽刺客户；直接拒绝客户；暗示客户有错误；强调自己正确的方面、不承认错误；"
       "表示或暗示客户不重要；认为投诉、抱怨是针对个人的；语言含糊、打太极拳；责备和批评自己的同事、表白自己的成绩；"
       "装假关注；在事实澄清以前便承担责任；拖延或隐瞒；为解决问题设置障碍（期待客户打退堂鼓）；不及时通知变故；"
       "以为客户容易打发；怀疑客户的诚实。",
       "", "处理客户不满的常见错误行为（两份培训材料）",
       "Arguing, interrupting; lecturing, mocking; flat refusal; implying the customer is wrong or unimportant; "
       "taking it personally; vague answers; blaming colleagues; fake attention; accepting liability too "
       "early; delaying or hiding; obstacles; not telling about changes."),
    _r("参考", None, "", "正确行为",
       "尽量离开服务区，注意对其他客户的影响；和颜以待，让客户发泄怨气；表示理解和关注并作记录；如有错误，立即承认；"
       "明确表示承担替客户解决问题的责任；同客户一起找出解决办法；必要时请上司出面。",
       "", "处理客户不满的正确行为",
       "Move away from other customers; let them vent; show understanding and take notes; admit a mistake at "
       "once; own the problem; find the solution together; bring in the manager when needed."),
))


def playbook_rows(playbook: Playbook = DEFAULT_PLAYBOOK) -> list[list[str]]:
    """Header + one row per rule, as the 处理手册 sheet shows them (column by its Chinese header)."""
    rows: list[list[str]] = [list(HEADER)]
    for r in playbook.rules:
        header = FIELD_BY_KEY[r.field].zh if r.field else ""
        values = "、".join(v for v in FIELD_BY_KEY[r.field].choices if v in r.values) if r.field else ""
        rows.append([r.kind, header, values, r.name, r.action, r.say, r.source, r.action_en, r.say_en])
    return rows


def playbook_from_rows(rows: list[list[Any]], *, sheet: str = SHEET_PLAYBOOK) -> Playbook:
    """Read the 处理手册 sheet back (header row first); bad rows name the sheet, cell and value."""
    from .schema import HEADER_ALIASES

    if rows and rows[0] and str(rows[0][0] or "").strip() == OLD_HEADER_FIRST:
        return DEFAULT_PLAYBOOK
    rules: list[Rule] = []
    width = len(HEADER)
    for i, row in enumerate(rows[1:], start=2):
        cells = [("" if c is None else str(c).strip()) for c in (list(row) + [""] * width)[:width]]
        kind_text, field_text, values_text, name, action, say, source, action_en, say_en = cells
        if not any(cells):
            continue
        kind = kind_text if kind_text in KINDS else KINDS_EN.get(kind_text.lower(), "")
        if not kind:
            raise BadSetting(f"{sheet}!A{i}", kind_text, f"类型须为 {'、'.join(KINDS)} 之一 (unknown kind)")
        if not action and kind != "风险词":
            raise BadSetting(f"{sheet}!E{i}", action, "做法不能为空 (the action is empty)")
        if kind in ("技巧", "方案") and not name:
            raise BadSetting(f"{sheet}!D{i}", name, "名称不能为空 (the name is empty)")
        field = None
        values: frozenset[str] = frozenset()
        if field_text:
            field = HEADER_ALIASES.get(normalise_header(field_text))
            if field is None or not FIELD_BY_KEY[field].choices:
                raise BadSetting(f"{sheet}!B{i}", field_text, "不是带下拉列表的投诉表列 (not a list column)")
            parts = split_values(values_text)
            # English spellings are accepted the same way the complaint table accepts them.
            canon = [choice_value(FIELD_BY_KEY[field], p) for p in parts]
            if None in canon or not parts:
                raise BadSetting(f"{sheet}!C{i}", values_text,
                                 f"适用值须为“{FIELD_BY_KEY[field].zh}”的下拉选项 (values must be list values)")
            values = frozenset(c for c in canon if c)
        elif values_text:
            # Values without a column would silently never apply: say so instead.
            raise BadSetting(f"{sheet}!C{i}", values_text, "填了适用值但没有填适用列 (values given without a column)")
        rules.append(Rule(kind, field, values, name, action, say, source, action_en, say_en))
    if not any(r.kind in ("技巧", "方案", "上报", "骚扰") for r in rules):
        raise BadSetting(f"{sheet}!A2", "", "处理手册没有任何技巧 (the playbook has no technique)")
    return Playbook(tuple(rules))


def playbook_markdown(playbook: Playbook = DEFAULT_PLAYBOOK) -> str:
    """The built-in 处理手册 rows for docs/rules.md (a test checks the doc contains it)."""
    def cell(text: str) -> str:
        return text.replace("|", "｜").replace("\n", " ")

    lines = ["| 类型 | 适用列 | 适用值 | 名称 | 做法 | 话术 | 依据 |", "|---|---|---|---|---|---|---|"]
    for row in playbook_rows(playbook)[1:]:
        kind, column, values, name, action, say, source = row[:7]
        lines.append("| " + " | ".join(cell(x) for x in (kind, column or "（任何投诉）", values, name, action, say, source))
                     + " |")
    return "\n".join(lines)
