"""One row per situation the training texts name, and the technique and sentence they prescribe.

seed 001 第四篇 三、 (the six techniques with their 适用条件 and 用语举例), 五、 (harassment calls),
第五篇 2 (a complaint that is not valid gets a tactful answer), seed 004 (预警上报), seeds 000/003
(wrong behaviours). Each row: the complaint, what the suggestion must contain, what it must not.
"""

from datetime import timedelta

import pytest

from complaint_core.model import ComplaintTable, SourceRow
from complaint_core.playbook import DEFAULT_PLAYBOOK, playbook_from_rows, playbook_rows
from complaint_core.schema import KEYS
from complaint_core.suggest import MAX_CHARS, fills_for_table, suggest_steps
from complaint_core.validate import validate_row
from tests.support.workbooks import NOW

BASE = {"received_at": NOW - timedelta(hours=1), "customer_phone": "13800138000", "category": "商品质量",
        "description": "买的电饭煲用了三天就坏了", "severity": "一般", "channel": "电话"}

SITUATIONS = [
    # (situation, row, must contain, must not contain)
    ("误解政策 → 3F法", {"request_fit": "误解政策", "customer_request": "退款"},
     ["3F法", "我理解您为什么会有这样的感受", "其他客户也曾经有过同样的感受", "他们发觉这种规定是保护他们的利益"],
     ["7+1", "退款会在"]),
    ("超出规定 → 7+1说服法、三明治法", {"request_fit": "超出规定", "customer_request": "赔偿补偿"},
     ["7+1说服法", "三明治法", "我们可以为您……；您也可以……", "避免：直接拒绝客户"],
     ["补偿性关照", "为表歉意", "3F法"]),
    ("合理的赔偿诉求 → 不用7+1，给补偿性关照", {"request_fit": "合理", "customer_request": "赔偿补偿", "validity": "成立"},
     ["补偿性关照", "引导征询法"], ["7+1"]),
    ("客户不接受方案 → 谅解法、三明治法、引导征询法", {"plan_response": "不接受"},
     ["谅解法", "三明治法", "引导征询法", "我很同意您的观点，同时我们考虑到", "您希望我们怎样处理"],
     ["您说得很有道理，但是"]),
    ("不成立 → 三明治法婉转答复，不提补偿、不说退款", {"validity": "不成立", "customer_request": "退款"},
     ["三明治法", "婉转答复", "避免：直接拒绝客户"], ["退款会在", "补偿性关照", "为表歉意"]),
    ("不成立且要求赔偿 → 不给超出预期的补偿", {"validity": "不成立", "customer_request": "赔偿补偿"},
     ["三明治法"], ["补偿性关照", "超出预期"]),
    ("客户原因（误用、误解条款） → 3F法", {"root_cause": "客户原因"}, ["3F法", "其他客户也曾经有过同样的感受"], ["7+1"]),
    ("回访仍不满意 → 深度回访", {"satisfaction": "不满意", "resolved_at": NOW - timedelta(minutes=30)},
     ["深度回访", "上次的处理方案落实了吗？对您有用吗？还有其他问题吗？"], []),
    ("客户激动 → 移情法先处理感情", {"customer_mood": "愤怒", "customer_request": "退款", "validity": "成立"},
     ["移情法", "我理解您为什么会有这样的感受", "退款会在", "避免：争辩"], ["预警上报"]),
    ("普通投诉 → 引导征询法", {}, ["引导征询法", "您希望我们怎样为您解决"], ["预警上报", "移情法"]),
    ("骚扰来电 → 礼貌结束、单独队列、不计时限", {"category": "骚扰来电", "description": "又来胡说八道，已报警"},
     ["您好，您好，听得到吗？对不起线路故障，请稍后再拨", "单独队列", "不计时限"],
     ["前电话联系", "反馈", "预警上报", "六步法"]),
    ("严重 → 预警上报", {"severity": "严重"}, ["预警上报", "严重程度：严重", "不做过度承诺"], []),
    ("第三方转办 → 预警上报", {"channel": "第三方转办"}, ["预警上报", "第三方转办"], []),
    ("有社会背景型 → 预警上报", {"customer_type": "有社会背景型"}, ["预警上报", "有社会背景型"], []),
    ("威胁曝光 → 预警上报", {"description": "再不处理我就找记者曝光，还要打12315"},
     ["预警上报", "记者", "曝光", "12315"], []),
    ("只留邮箱 → 发邮件联系", {"customer_phone": None, "customer_email": "wang@example.com"},
     ["发邮件联系客户", "发邮件向客户反馈"], ["前电话联系客户"]),
    ("有电话 → 电话联系", {}, ["前电话联系客户"], ["发邮件"]),
    ("滥用正义感型 → 道歉及感谢", {"customer_type": "滥用正义感型"}, ["道歉及感谢", "谢谢您指出这个问题"], []),
    ("固执己见型 → 谅解法", {"customer_type": "固执己见型"}, ["谅解法", "以同意取代反对"], []),
    ("有备而来型 → 不做过度承诺", {"customer_type": "有备而来型"}, ["不做过度承诺", "核实事实"], []),
    ("较重 → 避免事实未清先担责", {"severity": "较重"}, ["避免：在事实澄清以前便承担责任"], []),
]


@pytest.mark.parametrize("situation, row, must, must_not", SITUATIONS, ids=[s[0] for s in SITUATIONS])
def test_the_texts_technique_for_each_situation(situation, row, must, must_not):
    text = suggest_steps(BASE | row, DEFAULT_PLAYBOOK, now=NOW)
    for part in must:
        assert part in text, (situation, part, text)
    for part in must_not:
        assert part not in text, (situation, part, text)
    assert len(text) <= MAX_CHARS


def test_at_most_two_techniques_and_feelings_come_first():
    text = suggest_steps(BASE | {"customer_mood": "激动", "request_fit": "超出规定", "plan_response": "不接受",
                                 "customer_type": "固执己见型"}, now=NOW)
    lines = text.splitlines()
    named = [n for n in ("移情法", "谅解法、三明治法、引导征询法", "7+1说服法", "谅解法：")
             if any(line.split(". ", 1)[-1].startswith(n) for line in lines)]
    assert named == ["移情法", "谅解法、三明治法、引导征询法"]


def test_the_worst_case_still_fits_in_400_characters():
    worst = BASE | {"received_at": NOW - timedelta(days=9), "resolved_at": NOW - timedelta(days=5),
                    "customer_mood": "愤怒", "customer_request": "赔偿补偿", "customer_type": "有社会背景型",
                    "severity": "严重", "channel": "第三方转办", "plan_response": "不接受",
                    "description": "记者 电视台 曝光 媒体 微博 抖音 律师 起诉 法院 12315 消协 市场监管",
                    "status": "已解决"}
    text = suggest_steps(worst, now=NOW)
    assert len(text) <= MAX_CHARS and "预警上报" in text and "移情法" in text


def test_a_harassment_call_gets_no_deadlines():
    row = {k: None for k in KEYS} | BASE | {"category": "骚扰来电", "complaint_id": "SH01-1", "shop": "SH01"}
    table = ComplaintTable(path=None, sheet="投诉登记", header_row=1, first_col=0,
                           columns={k: i for i, k in enumerate(KEYS)}, extra_columns={},
                           rows=[SourceRow(row=2, values=row)], shop_code="SH01")
    (fill,) = fills_for_table(table, now=NOW)
    assert set(fill.values) == {"suggested_steps"}


def test_the_shops_phrases_and_escalation_words_drive_the_suggestion():
    rows = [list(r) for r in playbook_rows()]
    fff = next(r for r in rows if r[3] == "3F法")
    fff[5] = "王姐，我懂您的心情，好多老顾客一开始也这么想。"
    words = next(r for r in rows if r[0] == "风险词")
    words[4] = "大众点评、黑猫投诉"
    book = playbook_from_rows(rows)
    text = suggest_steps(BASE | {"request_fit": "误解政策", "description": "我要发到大众点评上"}, book, now=NOW)
    assert "王姐，我懂您的心情" in text and "预警上报" in text and "大众点评" in text
    assert "预警上报" not in suggest_steps(BASE | {"description": "我要找记者"}, book, now=NOW)


@pytest.mark.parametrize("row, warned", [
    ({"channel": "第三方转办"}, True),
    ({"description": "不解决就去法院起诉你们"}, True),
    ({"customer_type": "有社会背景型"}, True),
    ({"channel": "第三方转办", "severity": "严重"}, False),   # already 严重: nothing to say
    ({"category": "骚扰来电", "description": "骚扰者威胁要找媒体"}, False),
    ({}, False),
])
def test_validation_warns_that_severity_should_be_severe(row, warned):
    found = validate_row(BASE | {"received_by": "李娜", "customer_name": "王"} | row, now=NOW)
    got = [f for f in found if f[1] == "should_be_severe"]
    assert bool(got) == warned, found
    if got:
        assert got[0][0] == "severity"


def test_validation_uses_the_shops_escalation_words():
    row = BASE | {"received_by": "李娜", "customer_name": "王", "description": "要发黑猫投诉"}
    assert not [f for f in validate_row(row, now=NOW) if f[1] == "should_be_severe"]
    assert [f for f in validate_row(row, now=NOW, risk_words=("黑猫投诉",)) if f[1] == "should_be_severe"]


def test_the_escalation_warning_reads_in_both_languages():
    from complaint_core.findings import message

    row = BASE | {"received_by": "李娜", "customer_name": "王", "channel": "第三方转办", "description": "要找记者"}
    ((key, code, fmt),) = [f for f in validate_row(row, now=NOW) if f[1] == "should_be_severe"]
    zh, en = message(code, key, "zh", **fmt), message(code, key, "en", **fmt)
    assert "第三方转办" in zh and "记者" in zh and "严重" in zh
    assert "third-party" in en and "记者" in en and "Severe" in en


def test_a_shop_that_deleted_the_escalation_row_still_escalates():
    rows = [r for r in playbook_rows() if r[0] != "上报"]
    text = suggest_steps(BASE | {"channel": "第三方转办"}, playbook_from_rows(rows), now=NOW)
    assert text.startswith("1. 预警上报") and "立即报告主管" in text
