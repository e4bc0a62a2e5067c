"""Which complaints go up at once (预警上报), and why.

Seed 004 makes "not exposed by the media" the highest rule and asks for an early-warning and
escalation path; seed 001 names the customers with a social background. A clerk often leaves
严重程度 at 一般 for a complaint passed on by 12315 or one that threatens the press, so the
dropdown alone is not enough: the channel, the customer type and the words the customer used
count too. The word list is the shop's to edit (the 风险词 row of the 处理手册 sheet:
``Playbook.risk_words``); these are the defaults. A harassment call (骚扰来电) is not a complaint
and never escalates, even when the clerk writes that the police were called.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

# Words that signal media, legal or regulator risk, as customers write them in China.
DEFAULT_RISK_WORDS: tuple[str, ...] = (
    "记者", "电视台", "报社", "曝光", "媒体", "微博", "抖音", "小红书", "朋友圈", "热搜", "网上发",
    "律师", "起诉", "法院", "诉讼", "打官司", "报警", "派出所",
    "12315", "12345", "消协", "消费者协会", "市场监管", "工商局", "投诉到上级", "监管部门",
)

# The fields a customer's own words end up in.
TEXT_FIELDS = ("description", "customer_request", "notes")

THIRD_PARTY_CHANNEL = "第三方转办"
CONNECTED_TYPE = "有社会背景型"


def escalation_reasons(values: Mapping[str, Any], words: Iterable[str] = DEFAULT_RISK_WORDS, *,
                       lang: str = "zh") -> list[str]:
    """Why this complaint must be reported upward at once; empty when it need not be.

    Each reason is a short phrase a manager reads on the alert ("渠道：第三方转办"); ``lang="en"``
    gives English (the customer's words stay as they were typed).
    """
    en = lang == "en"
    reasons: list[str] = []
    if values.get("category") == "骚扰来电":
        return reasons
    if values.get("severity") == "严重":
        reasons.append("severity severe" if en else "严重程度：严重")
    if values.get("channel") == THIRD_PARTY_CHANNEL:
        reasons.append("third-party channel (12315)" if en else f"渠道：{THIRD_PARTY_CHANNEL}（消协/12315 等转来）")
    if values.get("customer_type") == CONNECTED_TYPE:
        reasons.append("connected customer" if en else f"客户类型：{CONNECTED_TYPE}")
    text = " ".join(str(values.get(k) or "") for k in TEXT_FIELDS)
    cleaned = _cleaned(words)
    # one search for any of the words first: most complaints mention none (2.4 -> 0.5 µs a row)
    hits = [w for w in cleaned if w in text] if _any_of(cleaned).search(text) else []
    if hits:
        reasons.append(("mentions " if en else "提到：") + "、".join(hits[:5]))
    return reasons


def _cleaned(words: Iterable[str]) -> tuple[str, ...]:
    """The words as looked for: trimmed, without blanks or repeats (each row of a shop's file
    is checked against the same words: a tuple is cleaned once)."""
    if isinstance(words, tuple):
        try:
            return _cleaned_once(words)
        except TypeError:   # something unhashable in it: cleaned here
            pass
    return _clean(words)


@lru_cache(maxsize=64)
def _any_of(words: tuple[str, ...]) -> re.Pattern[str]:
    """Finds any of ``words`` (a pattern that never matches when there are none)."""
    return re.compile("|".join(map(re.escape, words)) or r"(?!)")


def _clean(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(w for w in dict.fromkeys(w.strip() for w in words) if w)


@lru_cache(maxsize=64)
def _cleaned_once(words: tuple[str, ...]) -> tuple[str, ...]:
    return _clean(words)


def escalates(values: Mapping[str, Any], words: Iterable[str] = DEFAULT_RISK_WORDS) -> bool:
    return bool(escalation_reasons(values, words))
