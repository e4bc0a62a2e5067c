"""The handling playbook (处理手册) as data: which advice fits which complaint.

Distilled from the shop's training material (six-step method, service recovery, the
techniques by situation, difficult-customer types, escalation, wrong behaviours). The
template writes it to the 处理手册 sheet; a shop may edit that sheet and the suggestions
follow its edits. A rule fires when its field has one of the listed values; a rule with
no field always fires.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .errors import BadSetting
from .schema import FIELD_BY_KEY, SHEET_PLAYBOOK, choice_value, normalise_header

HEADER = ("规则编号", "适用字段", "适用值（用、分隔）", "建议", "依据", "建议（英文）")


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    field: str | None             # field key; None = always
    values: frozenset[str]        # canonical Chinese values that trigger the rule
    advice: str
    source: str = ""
    advice_en: str = ""           # optional; English output falls back to the Chinese text

    def text(self, lang: str = "zh") -> str:
        return self.advice_en if lang == "en" and self.advice_en else self.advice

    def applies(self, row: dict[str, Any]) -> bool:
        return self.field is None or row.get(self.field) in self.values


@dataclass(frozen=True, slots=True)
class Playbook:
    rules: tuple[Rule, ...]


def _r(rule_id: str, field: str | None, values: str, advice: str, source: str) -> Rule:
    return Rule(rule_id, field, frozenset(v for v in values.split("、") if v), advice, source)


DEFAULT_PLAYBOOK = Playbook((
    # Order matters: suggestions list the rules in this order, so escalation comes first.
    _r("E1", "severity", "严重", "上报主管：启动预警与上报机制，必要时请公关介入；不做过度承诺", "高风险投诉上报"),
    _r("E2", "customer_type", "有社会背景型",
       "有媒体或上级关系风险：立即上报主管，由主管亲自处理；言辞谨慎，事实未清前不表态", "难应付客户：有社会背景者"),
    _r("S1", None, "", "六步法：让客户发泄→道歉并感谢→提问了解真实需求→在权限内提出方案→让客户参与意见→跟踪回访；"
       "先处理感情，后处理事情", "处理投诉六步法"),
    _r("S2", None, "", "服务补救：道歉→紧急复原→移情→象征性赎罪（超出预期的小补偿）→跟踪", "服务补救五步"),
    _r("T1", "customer_mood", "激动、愤怒", "移情法：换到安静处，耐心倾听不打断，表示理解客户的感受，先安抚情绪",
       "处理技巧：移情法"),
    _r("T2", "validity", "不成立", "三明治法：肯定客户→委婉说明不能满足的原因→给出可替代的帮助，避免生硬说“不”；"
       "耐心澄清误会", "处理技巧：三明治法"),
    _r("T3", "root_cause", "客户原因", "3F法：理解客户的感受（Feel），别人也曾这样（Felt），后来发现（Found）"
       "正确的使用方法或规定", "处理技巧：3F法"),
    _r("T4", "customer_request", "赔偿补偿", "7+1说服法：要求超出公司政策时，说明政策并给出可选方案；"
       "超出权限找有权限的人；不能满足时用三明治法，不生硬拒绝", "处理技巧：7+1说服法、三明治法"),
    _r("T5", "customer_request", "其他、纠正改进", "引导征询法：先问客户希望怎样解决，再共同商定方案，不强加方案",
       "处理技巧：引导征询法"),
    _r("T6", "validity", "成立", "引导征询法商定补救：问客户希望怎样解决，在权限内共同商定，写入处理方案并报主管批示",
       "处理技巧：引导征询法；处理流程第5、6步"),
    _r("R1", "customer_request", "退款", "退款：说明退款方式和到账时间；若延迟，主动在客户询问前告知", "处理方案：退款"),
    _r("R2", "customer_request", "维修更换", "维修更换：约定完成时间；进度延误时主动告知客户", "处理方案：维修更换"),
    _r("R3", "customer_request", "道歉", "道歉：真诚道歉（道歉不等于认错），感谢客户提出意见", "处理方案：道歉"),
    _r("R4", "customer_request", "赔偿补偿", "补偿：在能承受范围内给出超出预期的补偿（礼品、折扣、免费服务），即象征性赎罪",
       "提供让客户惊喜的补偿；服务补救"),
    _r("R5", "customer_request", "解释说明", "解释说明：核实事实后清楚解释，不打太极，不推给同事", "处理方案：解释说明"),
    _r("C1", "customer_type", "感情用事型", "感情用事者：保持镇定，让其发泄，表示理解，尽力安抚，告诉客户一定会有解决方案",
       "难应付客户"),
    _r("C2", "customer_type", "滥用正义感型", "滥用正义感者：肯定其意见的价值，感谢指正，说明改进措施", "难应付客户"),
    _r("C3", "customer_type", "固执己见型", "固执己见者：先表示理解，耐心劝说，以实例说明，给出可选方案", "难应付客户"),
    _r("C4", "customer_type", "自我陶醉型", "自我陶醉者：给予尊重，谨慎措辞，不与之争辩", "难应付客户"),
    _r("C5", "customer_type", "有备而来型", "有备而来者（熟悉规定、可能录音）：言行谨慎，按规定办理，不随意承诺，必要时由主管出面",
       "难应付客户"),
    _r("W1", "customer_mood", "激动、愤怒", "避免：争辩、打断、嘲讽或说教；不要把客户的怒气当成针对个人", "常见错误行为"),
    _r("W2", "severity", "较重、严重", "避免：事实未清前承担责任、拖延或隐瞒、设置障碍让客户知难而退", "常见错误行为"),
    _r("W3", None, "", "避免：推卸给同事、含糊其辞、做不到的承诺；方案有变化要及时告知客户", "常见错误行为"),
))

_EN = {
    "E1": "Escalate to the manager: early-warning and escalation path, PR if needed; never over-promise",
    "E2": "Media or authority reach: tell the manager now and let them handle it; say nothing before the facts",
    "S1": "Six steps: let them vent → apologise and thank → ask for the real need → offer a fix within "
          "your authority → involve the customer → follow up; feelings first, then the matter",
    "S2": "Service recovery: apologise → fix urgently → empathise → symbolic atonement → follow up",
    "T1": "Empathy: quiet place, listen without interrupting, acknowledge the feeling, calm them first",
    "T2": "Sandwich: acknowledge → explain gently why not → offer an alternative; no bare 'no'",
    "T3": "Feel-felt-found: understand the feeling, others felt the same, then found the right use or rule",
    "T4": "7+1: explain the policy and offer options; beyond your authority find who has it; "
          "when the answer is no, use the sandwich",
    "T5": "Guided asking: ask how the customer wants it solved and agree together; don't impose",
    "T6": "Agree the remedy by guided asking, within your authority; write it in the plan for approval",
    "R1": "Refund: say how and when the money arrives; if delayed, tell them before they ask",
    "R2": "Repair/replace: agree a date; if progress slips, tell the customer first",
    "R3": "Apology: sincere (an apology is not an admission), thank them for the feedback",
    "R4": "Compensation: beyond expectation where affordable (gift, discount, free service)",
    "R5": "Explanation: check the facts, explain clearly, no evasion, don't pass it to colleagues",
    "C1": "Emotional: stay calm, let them vent, show understanding, promise there will be a solution",
    "C2": "Self-righteous: value the point, thank them, say what will improve",
    "C3": "Stubborn: show understanding, persuade patiently with examples, offer options",
    "C4": "Self-absorbed: show respect, choose words carefully, don't argue",
    "C5": "Came prepared (knows the rules, may record): be careful, follow the rules, promise nothing "
          "loosely, bring in the manager if needed",
    "W1": "Avoid arguing, interrupting, mocking or lecturing; don't take the anger personally",
    "W2": "Avoid accepting liability before the facts, delaying or hiding, or obstacles that wear them down",
    "W3": "Avoid blaming colleagues, vague answers and promises you can't keep; report any change",
}
DEFAULT_PLAYBOOK = Playbook(tuple(replace(r, advice_en=_EN.get(r.rule_id, "")) for r in DEFAULT_PLAYBOOK.rules))


def playbook_rows(playbook: Playbook = DEFAULT_PLAYBOOK) -> list[list[str]]:
    """Header + one row per rule, as the 处理手册 sheet shows them (field by its Chinese header)."""
    rows: list[list[str]] = [list(HEADER)]
    for r in playbook.rules:
        header = FIELD_BY_KEY[r.field].zh if r.field else ""
        values = "、".join(v for v in FIELD_BY_KEY[r.field].choices if v in r.values) if r.field else ""
        rows.append([r.rule_id, header, values, r.advice, r.source, r.advice_en])
    return rows


def playbook_from_rows(rows: list[list[Any]], *, sheet: str = SHEET_PLAYBOOK) -> Playbook:
    """Read the 处理手册 sheet back (header row first); bad rows name the sheet, row and value."""
    from .schema import HEADER_ALIASES

    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows[1:], start=2):
        # A sheet saved before the English column existed has five columns: pad, never fail.
        cells = [("" if c is None else str(c).strip()) for c in (list(row) + [""] * 6)[:6]]
        rule_id, field_text, values_text, advice, source, advice_en = cells
        if not any(cells):
            continue
        if not advice:
            raise BadSetting(f"{sheet}!D{i}", advice, "建议不能为空 (advice is empty)")
        field = None
        values: frozenset[str] = frozenset()
        if field_text:
            field = HEADER_ALIASES.get(normalise_header(field_text))
            if field is None or not FIELD_BY_KEY[field].choices:
                raise BadSetting(f"{sheet}!B{i}", field_text, "不是带下拉列表的投诉表列 (not a list column)")
            parts = [p.strip() for p in values_text.replace(",", "、").replace("，", "、").split("、") if p.strip()]
            # English spellings are accepted the same way the complaint table accepts them.
            canon = [choice_value(FIELD_BY_KEY[field], p) for p in parts]
            if None in canon or not parts:
                raise BadSetting(f"{sheet}!C{i}", values_text,
                                 f"适用值须为“{FIELD_BY_KEY[field].zh}”的下拉选项 (values must be list values)")
            values = frozenset(c for c in canon if c)
        elif values_text:
            # Values without a column would silently never apply: say so instead.
            raise BadSetting(f"{sheet}!C{i}", values_text, "填了适用值但没有填适用字段 (values given without a column)")
        rule_id = rule_id or f"R{i}"
        if rule_id in seen:
            raise BadSetting(f"{sheet}!A{i}", rule_id, f"规则编号与第 {seen[rule_id]} 行重复 (duplicate rule id)")
        seen[rule_id] = i
        rules.append(Rule(rule_id, field, values, advice, source, advice_en))
    if not rules:
        raise BadSetting(f"{sheet}!A2", "", "处理手册没有任何规则 (the playbook is empty)")
    return Playbook(tuple(rules))
