"""The 处理手册 playbook: contents from the training texts, sheet round trip, bad edits named."""

from pathlib import Path

import pytest

from complaint_core.errors import BadSetting
from complaint_core.escalation import DEFAULT_RISK_WORDS
from complaint_core.playbook import (
    DEFAULT_PLAYBOOK,
    HEADER,
    KINDS,
    Playbook,
    playbook_from_rows,
    playbook_rows,
)

SEEDS = Path("/work/shared/seeds")


def test_round_trip_through_sheet_rows():
    rows = playbook_rows()
    assert tuple(rows[0]) == HEADER and len(rows) == len(DEFAULT_PLAYBOOK.rules) + 1
    assert playbook_from_rows(rows) == DEFAULT_PLAYBOOK
    # What a spreadsheet hands back: None for blanks, an empty row in the middle, extra columns.
    messy = [list(rows[0])] + [[c or None for c in r] + ["店长备注"] for r in rows[1:3]] + [[None] * 9] + rows[3:]
    assert playbook_from_rows(messy) == DEFAULT_PLAYBOOK


def test_every_kind_is_on_the_sheet_and_the_reference_parts_are_in_full():
    kinds = {r.kind for r in DEFAULT_PLAYBOOK.rules}
    assert kinds == set(KINDS)
    names = {r.name: r for r in DEFAULT_PLAYBOOK.of("参考")}
    assert {"处理投诉六步法", "服务补救五步", "常见错误行为"} <= set(names)
    six = names["处理投诉六步法"].action
    for step in ("鼓励客户发泄", "道歉及感谢", "提问并了解问题所在", "提出解决方案", "让客户参与意见", "跟踪服务"):
        assert step in six
    wrong = names["常见错误行为"].action
    for behaviour in ("争辩", "打断", "讽刺", "打太极拳", "责备和批评自己的同事", "装假关注", "在事实澄清以前便承担责任",
                      "拖延或隐瞒", "设置障碍", "不及时通知变故"):
        assert behaviour in wrong


def test_the_sentences_to_say_are_the_training_texts_own():
    """3F, 谅解法, 三明治法 and the harassment line are quoted from seed 001, not invented."""
    seed = next(SEEDS.glob("001_*.txt")).read_text(encoding="utf-8")
    by_name = {r.name: r for r in DEFAULT_PLAYBOOK.rules}
    quoted = {
        "3F法": ["我理解您为什么会有这样的感受", "其他客户也曾经有过同样的感受", "不过经过说明后，他们发觉这种规定是保护他们的利益"],
        "谅解法": ["我很同意您的观点，同时我们考虑到"],
        "骚扰来电": ["您好，您好，听得到吗？对不起线路故障，请稍后再拨"],
    }
    for name, parts in quoted.items():
        for part in parts:
            assert part in by_name[name].say, (name, part)
            assert _plain(part) in _plain(seed), (name, part)


# seed 001 is in traditional characters with ASCII punctuation: compare characters only
_TRAD = str.maketrans("為會這樣戶經過說們發覺種規護觀點時慮聽嗎對線請撥", "为会这样户经过说们发觉种规护观点时虑听吗对线请拨")


def _plain(text: str) -> str:
    return "".join(ch for ch in text.translate(_TRAD) if ch not in "，,？?。.：:！! ")


def test_risk_words_default_and_shop_edits():
    assert DEFAULT_PLAYBOOK.risk_words == DEFAULT_RISK_WORDS
    rows = [list(r) for r in playbook_rows()]
    at = next(i for i, r in enumerate(rows) if r[0] == "风险词")
    rows[at][4] = "记者，大众点评、 黑猫投诉"
    assert playbook_from_rows(rows).risk_words == ("记者", "大众点评", "黑猫投诉")
    del rows[at]
    assert playbook_from_rows(rows).risk_words == DEFAULT_RISK_WORDS     # row deleted: built-in list


def test_english_kind_and_values_and_commas_are_accepted_in_the_sheet():
    rows = [list(HEADER), ["technique", "Mood", "激动，Angry", "先安抚", "先安抚情绪", "您别急", ""]]
    book = playbook_from_rows(rows)
    assert book == Playbook((book.rules[0],)) and book.rules[0].field == "customer_mood"
    assert book.rules[0].kind == "技巧" and book.rules[0].values == {"激动", "愤怒"}


def test_a_sheet_from_the_earlier_version_reads_as_the_built_in_playbook():
    old = [["规则编号", "适用字段", "适用值（用、分隔）", "建议", "依据", "建议（英文）"],
           ["T4", "客户诉求", "赔偿补偿", "7+1说服法：…", "处理技巧", ""]]
    assert playbook_from_rows(old) == DEFAULT_PLAYBOOK


@pytest.mark.parametrize("row, cell", [
    (["技巧", "客户情绪", "狂怒", "移情法", "先安抚", "", ""], "C2"),      # not a dropdown value
    (["技巧", "投诉内容", "吵架", "移情法", "先安抚", "", ""], "B2"),      # not a dropdown column
    (["技巧", "不存在的列", "愤怒", "移情法", "先安抚", "", ""], "B2"),
    (["技巧", "客户情绪", "", "移情法", "先安抚", "", ""], "C2"),          # column without values
    (["技巧", "", "愤怒", "移情法", "先安抚", "", ""], "C2"),              # values without a column
    (["技巧", "客户情绪", "愤怒", "移情法", "", "", ""], "E2"),            # no action
    (["技巧", "客户情绪", "愤怒", "", "先安抚", "", ""], "D2"),            # a technique needs its name
    (["妙招", "客户情绪", "愤怒", "移情法", "先安抚", "", ""], "A2"),      # unknown kind
])
def test_bad_rows_name_sheet_cell_and_value(row, cell):
    with pytest.raises(BadSetting, match=f"处理手册!{cell}") as err:
        playbook_from_rows([list(HEADER), row])
    assert repr(err.value.value) in str(err.value)


def test_a_playbook_without_any_technique_is_refused():
    with pytest.raises(BadSetting, match="处理手册!A2"):
        playbook_from_rows([list(HEADER), [None] * 9])
    with pytest.raises(BadSetting, match="处理手册!A2"):
        playbook_from_rows([list(HEADER), ["风险词", "", "", "", "记者", "", ""]])


def test_rules_doc_lists_every_built_in_technique_and_sentence():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in DEFAULT_PLAYBOOK.rules:
        if rule.kind in ("技巧", "方案", "避免", "上报", "骚扰"):
            assert rule.name in doc and rule.action in doc, rule.name
            assert rule.say in doc, rule.name
