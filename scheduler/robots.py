"""Group robots (企业微信 / 钉钉 / 飞书): who gets which post, each platform's message and signature,
and what each platform's reply code means.

Shops coordinate in chat groups, so a reminder is posted where the people already read: one
robot per shop group (``shops = ["SH01"]``) and a managers' group (``shops = []``). Everything
here is pure: building a post, a payload and a signature takes the clock as an argument.

Platform facts (their documentation, checked while building this):
- WeCom group robot: ``POST …/cgi-bin/webhook/send?key=KEY``; ``text`` (≤ 2048 bytes, @ by
  ``mentioned_mobile_list``) or ``markdown`` (≤ 4096 bytes, no @ by mobile); 20 posts a minute
  per robot; 45009 = too fast; 93000 = invalid webhook URL (a wrong key).
- DingTalk custom robot: ``POST …/robot/send?access_token=T[&timestamp=MS&sign=S]``;
  加签 ``sign = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{ms}\\n{secret}")))``; markdown
  with ``at.atMobiles`` (the mobiles must also appear as ``@138…`` in the text); 20 a minute;
  130101 / 410100 = too fast; 310000 = signature, keyword or IP refused; 300001 = no such token.
- Feishu custom bot: ``POST …/open-apis/bot/v2/hook/TOKEN`` with ``timestamp`` (seconds) and
  ``sign = base64(HMAC-SHA256(key=f"{s}\\n{secret}", msg=b""))`` in the body; body ≤ 20 KB;
  a custom bot cannot @ by mobile, so people are named in the text; 11232 = too fast;
  19021 = signature or timestamp; 19001 = token invalid; 19022 IP; 19024 keyword.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from complaint_core.overdue import KIND_ZH, STATE_ZH, OverdueItem
from complaint_core.rules_book import Rules

from .digestbook import DigestBook, more_line
from .mail import safe_key

KINDS = ("wecom", "dingtalk", "feishu")
KIND_ZH_NAME = {"wecom": "企业微信", "dingtalk": "钉钉", "feishu": "飞书"}
# Posts a minute a robot accepts (WeCom and DingTalk: 20; Feishu: 100, and 5 a second).
PER_MINUTE = {"wecom": 20, "dingtalk": 20, "feishu": 100}
MIN_GAP_SECONDS = {"wecom": 0.0, "dingtalk": 0.0, "feishu": 0.25}
CHANNEL = "bot"

# Reply codes: (rate limited, the robot's URL/secret/keyword is wrong).
RATE_CODES = {"wecom": {45009}, "dingtalk": {130101, 410100}, "feishu": {11232}}
SETUP_CODES = {"wecom": {93000, 40001, 40014, 93004},
               "dingtalk": {300001, 300005, 310000},
               "feishu": {19001, 19021, 19022, 19024}}
SETUP_HINT = {"wecom": "请检查机器人 Webhook 地址中的 key",
              "dingtalk": "请检查 access_token、加签密钥（SEC 开头）、关键词和 IP 白名单",
              "feishu": "请检查 Webhook 地址、签名校验密钥、关键词和 IP 白名单"}
# Payload limits in bytes (UTF-8): WeCom text/markdown content, DingTalk and Feishu whole bodies
# kept well under their ~20 KB.
TEXT_LIMIT = {"wecom": 2048, "dingtalk": 15000, "feishu": 15000}
MARKDOWN_LIMIT = {"wecom": 4096, "dingtalk": 15000, "feishu": 15000}


@dataclass(frozen=True, slots=True)
class Robot:
    """One ``[[bot]]`` section of desk.toml; the URL and secret stay in the environment."""

    name: str
    kind: str
    url_env: str
    secret_env: str = ""
    shops: tuple[str, ...] = ()

    @property
    def for_managers(self) -> bool:
        return not self.shops

    def covers(self, shop: str) -> bool:
        return not self.shops or shop in self.shops

    def label(self) -> str:
        return f"机器人“{self.name}”（{KIND_ZH_NAME[self.kind]}）"


@dataclass(frozen=True, slots=True)
class Post:
    """One message to one group, platform-neutral until it is sent."""

    robot: str
    dedupe_key: str
    title: str
    text: str          # plain text, no mentions
    markdown: str      # the same in markdown
    mentions: tuple[tuple[str, str], ...] = ()   # (name, mobile); mobile may be empty

    @property
    def message_id(self) -> str:
        return f"<{safe_key(self.dedupe_key)}@bot.complaint-desk.local>"


_INERT = str.maketrans({"*": "＊", "_": "＿", "[": "【", "]": "】", "`": "'", "#": "＃", "<": "＜",
                        ">": "＞", "|": "｜", "~": "～", "@": "＠", "\\": "＼"})


def md_safe(text: Any) -> str:
    """Customer text shown in a group: one line, no markdown, HTML or @ that could render or notify
    (full-width look-alikes, so it still reads the same)."""
    return " ".join(str(text or "").split()).translate(_INERT)


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` UTF-8 bytes at a line end, saying how many lines were left out."""
    if len(text.encode("utf-8")) <= limit:
        return text
    lines = text.split("\n")
    kept: list[str] = []
    size = 0
    budget = limit - 120   # room for the note below
    for line in lines:
        n = len(line.encode("utf-8")) + 1
        if size + n > budget:
            break
        kept.append(line)
        size += n
    if not kept:   # one huge line: cut by characters
        return text.encode("utf-8")[:budget].decode("utf-8", "ignore") + "……"
    rest = len(lines) - len(kept)
    return "\n".join(kept) + f"\n……（另有 {rest} 行未显示，详见提醒邮件或汇总工作簿）"


def _item_line(i: OverdueItem, md: bool) -> str:
    cid = md_safe(i.complaint_id or i.record_id) if md else (i.complaint_id or i.record_id)
    state = STATE_ZH[i.state]
    if md and i.state == "overdue":
        state = f"**{state}**"
    shop = md_safe(i.shop) if md else i.shop
    return f"- {cid}（{shop}）{KIND_ZH[i.kind]} 截止 {i.due:%m-%d %H:%M}：{state}"


def _mentions(names: Iterable[str], rules: Rules) -> tuple[tuple[str, str], ...]:
    out = []
    for name in dict.fromkeys(n for n in names if n):
        p = rules.person(name)
        out.append((name, p.mobile if p else ""))
    return tuple(out)


def digest_posts(items: Iterable[OverdueItem] | DigestBook, rules: Rules, robots: Sequence[Robot], *, day: date,
                 figures: dict[str, int]) -> list[Post]:
    """The day's reminder for each group: a shop group gets its shops' open items with their
    responsible people @-ed; the managers' group gets the figures and every overdue item with
    the department heads @-ed. A group with nothing open gets nothing (no noise). A post lists
    at most ``digestbook.LINES`` items, the most urgent, and says how many more there are."""
    book = items if isinstance(items, DigestBook) else DigestBook.of(items, rules, robots)
    posts: list[Post] = []
    heads = rules.heads()
    for robot in robots:
        short = book.groups.get(robot.name)
        if short is None or not short.count:
            continue
        mine = short.items
        if robot.for_managers:
            title = f"投诉逾期汇总 {day:%Y-%m-%d}：逾期 {short.count} 条"
            people = [heads.get(i.dept, "") for i in mine]
        else:
            title = f"投诉时限提醒 {day:%Y-%m-%d}：{short.count} 条待处理"
            people = [i.person for i in mine]
        by_person: dict[str, list[OverdueItem]] = {}
        for i, who in zip(mine, people, strict=True):
            by_person.setdefault(who or "（未指定责任人）", []).append(i)
        figs = "；".join(f"{k} {v}" for k, v in figures.items())
        # the count of what is left out goes near the top: a platform's size limit cuts the end
        more = [f"（{line}）"] if (line := more_line(short)) else []
        text = [title] + ([f"今日概况：{figs}"] if robot.for_managers else []) + more
        md = [f"### {title}"] + ([f"今日概况：{figs}"] if robot.for_managers else []) + more
        for who, its in sorted(by_person.items()):
            text.append(f"{who}：")
            md.append(f"**{md_safe(who)}**")
            text += [_item_line(i, False) for i in its]
            md += [_item_line(i, True) for i in its]
        # everyone with an item is @-ed, listed or not
        posts.append(Post(robot.name, f"{CHANNEL}|{robot.name}|digest|{day.isoformat()}", title,
                          "\n".join(text), "\n".join(md), _mentions(book.people[robot.name], rules)))
    return posts


# ---- the wire: each platform's body, signature and reply ----

def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk 加签 (before URL-encoding): HMAC-SHA256 keyed by the secret over "ts\\nsecret"."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu 签名校验: HMAC-SHA256 keyed by "ts\\nsecret" over an empty message (the other way round)."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _mention_line(mentions: Sequence[tuple[str, str]], *, by: str) -> str:
    if not mentions:
        return ""
    if by == "name":
        tags = " ".join(f"@{name}" for name, _m in mentions)
    else:   # DingTalk shows the @ only when the mobile is in the text too; names without one stay plain
        tags = " ".join(f"@{m}" if m else name for name, m in mentions)
    return f"\n\n请 {tags} 处理"


def _fit(text: str, tail: str, limit: int) -> str:
    # The @ line goes last and is never the part that is cut off.
    return clip(text, limit - len(tail.encode("utf-8"))) + tail


_NO_TAGS = str.maketrans({"<": "＜", ">": "＞"})


def payload(kind: str, title: str, text: str, markdown: str,
            mentions: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The JSON body a platform expects (without any signature)."""
    # No angle brackets at all, whoever typed them: Feishu reads <at user_id="all"> in a text
    # message as @everyone, WeCom reads <@userid> and <font>; our own messages use none.
    title, text, markdown = title.translate(_NO_TAGS), text.translate(_NO_TAGS), markdown.translate(_NO_TAGS)
    mobiles = [m for _n, m in mentions if m]
    if kind == "wecom":
        if mobiles:   # WeCom @s by mobile only in a text message
            content = _fit(text, _mention_line(mentions, by="name"), TEXT_LIMIT[kind])
            return {"msgtype": "text", "text": {"content": content, "mentioned_mobile_list": mobiles}}
        return {"msgtype": "markdown", "markdown": {"content": clip(markdown, MARKDOWN_LIMIT[kind])}}
    if kind == "dingtalk":
        return {"msgtype": "markdown",
                "markdown": {"title": title,
                             "text": _fit(markdown, _mention_line(mentions, by="mobile"), MARKDOWN_LIMIT[kind])},
                "at": {"atMobiles": mobiles, "isAtAll": False}}
    if kind == "feishu":
        return {"msg_type": "text",
                "content": {"text": _fit(text, _mention_line(mentions, by="name"), TEXT_LIMIT[kind])}}
    raise ValueError(kind)


def signed(kind: str, body: dict[str, Any], secret: str, *, unix_time: float) -> tuple[dict[str, str], dict[str, Any]]:
    """(extra query parameters, body) with the platform's signature when a secret is set."""
    if not secret:
        return {}, body
    if kind == "dingtalk":
        ms = int(unix_time * 1000)
        return {"timestamp": str(ms), "sign": dingtalk_sign(secret, ms)}, body
    if kind == "feishu":
        s = int(unix_time)
        return {}, {"timestamp": str(s), "sign": feishu_sign(secret, s), **body}
    return {}, body


def reply_code(kind: str, reply: Any) -> tuple[int, str]:
    """(code, message) from a platform's JSON reply; all three answer HTTP 200 also on errors."""
    if not isinstance(reply, dict):
        raise ValueError("回复不是 JSON 对象")
    if kind == "feishu":
        code = reply.get("code", reply.get("StatusCode"))
        msg = reply.get("msg", reply.get("StatusMessage", ""))
    else:
        code, msg = reply.get("errcode"), reply.get("errmsg", "")
    if isinstance(code, bool) or not isinstance(code, int):
        raise ValueError(f"回复中没有错误码：{json.dumps(reply, ensure_ascii=False)[:200]}")
    return code, str(msg)


def classify(kind: str, code: int) -> str:
    """ok | rate | setup | refused."""
    if code == 0:
        return "ok"
    if code in RATE_CODES[kind]:
        return "rate"
    if code in SETUP_CODES[kind]:
        return "setup"
    return "refused"
