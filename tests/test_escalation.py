"""Escalation triggers (seed 004: media exposure is the worst outcome; seed 001: connected customers)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from complaint_core.escalation import escalates, escalation_reasons


@pytest.mark.parametrize("values, expected", [
    ({"severity": "严重"}, ["严重程度：严重"]),
    ({"severity": "一般", "channel": "第三方转办"}, ["渠道：第三方转办（消协/12315 等转来）"]),
    ({"customer_type": "有社会背景型"}, ["客户类型：有社会背景型"]),
    ({"description": "再不处理我就找电视台曝光"}, ["提到：电视台、曝光"]),
    ({"description": "已经打了12315"}, ["提到：12315"]),
    ({"notes": "客户说要请律师起诉"}, ["提到：律师、起诉"]),
])
def test_each_trigger_names_its_reason(values, expected):
    assert escalation_reasons(values) == expected


def test_an_ordinary_complaint_does_not_escalate():
    assert not escalates({"severity": "一般", "channel": "电话", "description": "商品有划痕，要求换货"})


def test_the_shop_word_list_replaces_the_default():
    values = {"description": "客户说要发到大众点评"}
    assert not escalates(values)
    assert escalation_reasons(values, ["大众点评"]) == ["提到：大众点评"]


_WORDS = st.lists(st.sampled_from(["记者", "曝光", "12315", "a.b", "(", "+86", "投诉到上级", " 上级 ", "", "级"]),
                  max_size=6)


@settings(max_examples=300, deadline=None)
@given(_WORDS, st.lists(st.sampled_from(["记者", "曝", "光", "12315", "a.b", "axb", "(", "+86", "上级", "级", "，"]),
                        max_size=8).map("".join), st.booleans())
def test_every_word_in_the_text_is_named_in_the_lists_order(words: list[str], text: str, as_tuple: bool) -> None:
    cleaned = [w for w in dict.fromkeys(w.strip() for w in words) if w]
    hits = [w for w in cleaned if w in text]
    got = escalation_reasons({"description": text}, tuple(words) if as_tuple else words)
    assert got == (["提到：" + "、".join(hits[:5])] if hits else [])
