"""Group robots through the real httpx transport against a loopback server speaking the three APIs.

The server checks DingTalk's and Feishu's signatures itself (tests/support/robots.py), answers
HTTP 200 with the platforms' error codes, and limits each robot to 20 posts a minute.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

import scheduler.api  # noqa: F401  (registers the scheduler tables before the store opens)
from complaint_core.errors import BadSetting
from complaint_core.store import open_store
from complaint_core.store.sched_tables import outbox
from scheduler import outbox as ob
from scheduler.config import load_config
from scheduler.outbox import MAX_ATTEMPTS, queue_posts, send_posts
from scheduler.robots import (
    PER_MINUTE,
    Post,
    Robot,
    clip,
    dingtalk_sign,
    feishu_sign,
    md_safe,
    payload,
)
from scheduler.webhook import JsonFolderTransport, WebhookTransport, robot_transports

NOW = datetime(2026, 3, 2, 15, 0)
WECOM = Robot("人民路店群", "wecom", "CD_BOT_SH01", "", ("SH01",))
DING = Robot("滨江店群", "dingtalk", "CD_BOT_SH02", "CD_BOT_SH02_SECRET", ("SH02",))
FEISHU = Robot("主管群", "feishu", "CD_BOT_BOSS", "CD_BOT_BOSS_SECRET", ())
MENTIONS = (("张三", "13800138000"), ("李四", ""))


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    return s


def post(robot: Robot, n: int = 0, mentions=MENTIONS) -> Post:
    return Post(robot.name, f"bot|{robot.name}|digest|{n}", f"投诉时限提醒 {n}", f"第 {n} 条\n- A-{n} 联系 逾期",
                f"### 投诉时限提醒 {n}\n- A-{n} 联系 **逾期**", mentions)


def enqueue(store, posts):
    with store.begin() as c:
        return queue_posts(c, posts, now=NOW)


def transports(server, *, ding_secret="SECding", feishu_secret="feishu-secret", wecom_key="wk"):
    server.add("wecom", "wk")
    server.add("dingtalk", "dt", "SECding")
    server.add("feishu", "fs", "feishu-secret")
    return {WECOM.name: WebhookTransport(WECOM, server.url("wecom", wecom_key), timeout=5),
            DING.name: WebhookTransport(DING, server.url("dingtalk", "dt"), ding_secret, timeout=5),
            FEISHU.name: WebhookTransport(FEISHU, server.url("feishu", "fs"), feishu_secret, timeout=5)}


def by_state(store):
    with store.begin() as c:
        return {r.dedupe_key: r for r in c.execute(select(outbox))}


def test_signatures_match_the_documented_algorithms():
    # DingTalk: key = secret, message = "ms\nsecret"; Feishu: key = "s\nsecret", empty message.
    import base64
    import hashlib
    import hmac
    d = base64.b64encode(hmac.new(b"SEC1", b"1700000000000\nSEC1", hashlib.sha256).digest()).decode()
    f = base64.b64encode(hmac.new(b"1700000000\nsec", b"", hashlib.sha256).digest()).decode()
    assert dingtalk_sign("SEC1", 1700000000000) == d and feishu_sign("sec", 1700000000) == f
    assert dingtalk_sign("SEC1", 1700000000000) != dingtalk_sign("SEC2", 1700000000000)


def test_each_platform_gets_its_format_with_mentions(store, robot_server):
    enqueue(store, [post(WECOM), post(DING), post(FEISHU)])
    rep = send_posts(store, transports(robot_server), now=NOW)
    assert rep.sent == 3 and rep.errors == []
    wecom = robot_server.posts_to("wecom", "wk")[0].body
    # WeCom @s by mobile only in a text message
    assert wecom["msgtype"] == "text" and wecom["text"]["mentioned_mobile_list"] == ["13800138000"]
    assert "@张三" in wecom["text"]["content"] and "A-0" in wecom["text"]["content"]
    ding = robot_server.posts_to("dingtalk", "dt")[0]
    assert ding.body["msgtype"] == "markdown" and ding.body["at"] == {"atMobiles": ["13800138000"], "isAtAll": False}
    assert "@13800138000" in ding.body["markdown"]["text"] and ding.query["access_token"] == "dt"
    assert ding.query["timestamp"].isdigit() and ding.query["sign"]   # verified by the server
    fs = robot_server.posts_to("feishu", "fs")[0].body
    assert fs["msg_type"] == "text" and "@张三" in fs["content"]["text"] and "@李四" in fs["content"]["text"]
    assert fs["timestamp"].isdigit() and fs["sign"]
    assert {r.state for r in by_state(store).values()} == {"sent"}


def test_exactly_once_across_runs(store, robot_server):
    enqueue(store, [post(WECOM, i) for i in range(3)])
    tr = transports(robot_server)
    assert send_posts(store, tr, now=NOW).sent == 3
    assert enqueue(store, [post(WECOM, i) for i in range(3)]) == 0   # a rescan queues nothing new
    assert send_posts(store, transports(robot_server), now=NOW + timedelta(minutes=5)).sent == 0
    assert len(robot_server.posts) == 3


def test_markdown_without_mobiles_and_clipped_to_the_limit(store, robot_server):
    long = Post(WECOM.name, "bot|long", "长", "x", "\n".join(f"- 第 {i} 行 投诉内容较长较长较长" for i in range(400)), ())
    body = payload("wecom", long.title, long.text, long.markdown, long.mentions)
    assert body["msgtype"] == "markdown" and len(body["markdown"]["content"].encode()) <= 4096
    assert "另有" in body["markdown"]["content"]
    huge = Post(FEISHU.name, "bot|huge", "长", "\n".join(f"- 第 {i} 行 投诉内容较长较长较长" for i in range(2000)), "x",
                MENTIONS)
    ding = Post(DING.name, "bot|ding-huge", "长", "x", huge.text, MENTIONS)
    enqueue(store, [long, huge, ding])
    # the server checks WeCom's 4096 bytes and Feishu's 20 KB body
    assert send_posts(store, transports(robot_server), now=NOW).sent == 3
    fs = robot_server.posts_to("feishu", "fs")[0].body["content"]["text"]
    assert fs.endswith("请 @张三 @李四 处理") and "另有" in fs   # the @ line survives the cut
    assert clip("短", 10) == "短"


def test_customer_text_cannot_mention_or_render():
    assert md_safe("@all <font>[点我](http://x)** \n 记者") == "＠all ＜font＞【点我】(http://x)＊＊ 记者"
    evil = '顾客写了 <at user_id="all">所有人</at> 和 <@wangqing>'
    for kind in ("wecom", "dingtalk", "feishu"):
        body = json.dumps(payload(kind, "t", evil, evil, MENTIONS), ensure_ascii=False)
        assert "<" not in body and ">" not in body and "所有人" in body


def test_rate_limit_is_retried_later_never_dropped(store, robot_server):
    enqueue(store, [post(DING, 0), post(DING, 1), post(WECOM, 0)])
    tr = transports(robot_server)
    robot_server.rate_limit_next(2 * (MAX_ATTEMPTS + 2))   # two robots: more refusals than a mail ever gets
    now = NOW
    for _ in range(MAX_ATTEMPTS + 2):
        rep = send_posts(store, tr, now=now)
        assert rep.failed == 0 and rep.sent == 0, rep
        now += timedelta(hours=1)
    rows = by_state(store)
    assert {r.state for r in rows.values()} == {"pending"}
    # "too fast" is not an attempt: a network blip after it still gets the mail's 8 tries
    assert max(r.rate_limited or 0 for r in rows.values()) > MAX_ATTEMPTS and max(r.attempts for r in rows.values()) == 0
    first = rows[f"bot|{DING.name}|digest|0"]
    assert "限流" in first.last_error and first.next_at <= now + timedelta(minutes=16)
    rep = send_posts(store, tr, now=now + timedelta(hours=1))
    assert rep.sent == 3 and len(robot_server.posts) == 3


def test_a_rate_limited_robot_stops_for_the_run_the_others_go_on(store, robot_server):
    enqueue(store, [post(DING, 0), post(DING, 1), post(FEISHU, 0)])
    robot_server.rate_limit_next(1)   # the first request (DingTalk's first post) is refused
    rep = send_posts(store, transports(robot_server), now=NOW)
    assert rep.sent == 1 and rep.retry == 1 and rep.deferred == 1
    assert [p.kind for p in robot_server.posts] == ["feishu"]
    assert [a[2] for a in robot_server.answers].count(130101) == 1   # no hammering after "too fast"


def test_own_limit_of_20_a_minute_per_robot(store, robot_server):
    enqueue(store, [post(WECOM, i) for i in range(25)])
    tr = transports(robot_server)
    rep = send_posts(store, tr, now=NOW, per_minute={WECOM.name: PER_MINUTE["wecom"]})
    assert rep.sent == 20 and rep.deferred == 5
    assert 45009 not in [a[2] for a in robot_server.answers]   # we never ran into the platform's limit
    assert send_posts(store, tr, now=NOW + timedelta(seconds=30), per_minute={WECOM.name: 20}).sent == 0
    # The server counts real seconds, the outbox the scan's clock: a minute later for both.
    robot_server.per_minute = 40
    assert send_posts(store, tr, now=NOW + timedelta(seconds=61), per_minute={WECOM.name: 20}).sent == 5


@pytest.mark.parametrize("which", ["wecom_key", "ding_secret", "feishu_secret"])
def test_bad_key_or_signature_is_one_line_naming_the_robot(store, robot_server, which):
    enqueue(store, [post(WECOM, 0), post(WECOM, 1), post(DING, 0), post(DING, 1), post(FEISHU, 0), post(FEISHU, 1)])
    wrong = {which: "wrong"}
    rep = send_posts(store, transports(robot_server, **wrong), now=NOW)
    name = {"wecom_key": WECOM.name, "ding_secret": DING.name, "feishu_secret": FEISHU.name}[which]
    assert len(rep.errors) == 1 and name in rep.errors[0] and "环境变量" in rep.errors[0], rep.errors
    assert rep.sent == 4 and rep.failed == 0   # the other robots went out
    rows = by_state(store)
    assert {r.state for k, r in rows.items() if name in k} == {"pending"}   # kept for after the fix
    fixed = send_posts(store, transports(robot_server), now=NOW + timedelta(minutes=5))
    assert fixed.sent == 2 and len(robot_server.posts) == 6


def test_plain_http_refused_except_loopback(store, robot_server):
    enqueue(store, [post(WECOM)])
    tr = {WECOM.name: WebhookTransport(WECOM, "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", timeout=2)}
    rep = send_posts(store, tr, now=NOW)
    assert rep.sent == 0 and len(rep.errors) == 1 and "https" in rep.errors[0] and WECOM.name in rep.errors[0]
    assert "key=k" not in rep.errors[0]   # the key is a secret: never in the log
    assert {r.state for r in by_state(store).values()} == {"pending"}
    assert send_posts(store, transports(robot_server), now=NOW).sent == 1   # http://127.0.0.1 is fine


def test_lost_reply_is_unknown_and_never_reposted(store, robot_server):
    enqueue(store, [post(WECOM)])
    robot_server.reply_delay = 1.5
    robot_server.add("wecom", "wk")
    tr = {WECOM.name: WebhookTransport(WECOM, robot_server.url("wecom", "wk"), timeout=0.5)}
    rep = send_posts(store, tr, now=NOW)
    assert rep.unknown == 1 and len(robot_server.posts) == 1
    robot_server.reply_delay = 0
    assert send_posts(store, tr, now=NOW + timedelta(hours=1)).sent == 0
    assert len(robot_server.posts) == 1 and by_state(store)[f"bot|{WECOM.name}|digest|0"].state == "unknown"


def test_server_down_is_retried_and_posted_once(store, robot_server):
    from tests.support.robots import RobotServer
    enqueue(store, [post(FEISHU)])
    down = RobotServer().start()
    url = down.add("feishu", "fs", "feishu-secret")
    down.stop()   # nothing listens on that port now
    tr = {FEISHU.name: WebhookTransport(FEISHU, url, "feishu-secret", timeout=2)}
    rep = send_posts(store, tr, now=NOW)
    assert rep.retry == 1 and rep.unknown == 0 and "无法连接" in rep.errors[0]
    assert by_state(store)[f"bot|{FEISHU.name}|digest|0"].state == "pending"
    rep = send_posts(store, transports(robot_server), now=NOW + timedelta(minutes=2))
    assert rep.sent == 1 and len(robot_server.posts) == 1


def test_unset_url_variable_writes_json_beside_the_eml(store, tmp_path):
    tr = robot_transports([WECOM, DING], tmp_path / "outbox", environ={})
    assert all(isinstance(t, JsonFolderTransport) for t in tr.values())
    enqueue(store, [post(WECOM), post(DING)])
    assert send_posts(store, tr, now=NOW).sent == 2
    files = sorted((tmp_path / "outbox").rglob("*.json"))
    assert [f.parent.name for f in files] == sorted([WECOM.name, DING.name])
    doc = json.loads(next(f for f in files if f.parent.name == DING.name).read_text(encoding="utf-8"))
    assert doc["kind"] == "dingtalk" and doc["body"]["at"]["atMobiles"] == ["13800138000"]
    assert "CD_BOT_SH02" in doc["note"]
    assert send_posts(store, tr, now=NOW).sent == 0 and len(list((tmp_path / "outbox").rglob("*.json"))) == 2


def test_removed_robot_section_fails_its_posts_with_a_reason(store, robot_server):
    enqueue(store, [post(WECOM)])
    rep = send_posts(store, {}, now=NOW)
    assert rep.failed == 1 and "已不在" in rep.errors[0]
    done = ob.resend(store, by_state(store)[f"bot|{WECOM.name}|digest|0"].id, now=NOW)
    assert done.state == "failed" and done.queued


def write_config(tmp_path, bots: str):
    cfg = tmp_path / "desk.toml"
    cfg.write_text(f'[store]\nurl = "state.db"\n\n{bots}', encoding="utf-8")
    return cfg


def test_bot_sections_in_the_config(tmp_path):
    cfg = load_config(write_config(tmp_path, '''
[[bot]]
name = "人民路店群"
kind = "wecom"
url_env = "CD_BOT_SH01"
shops = ["SH01"]

[[bot]]
name = "主管群"
kind = "dingtalk"
url_env = "CD_BOT_BOSS"
secret_env = "CD_BOT_BOSS_SECRET"
shops = []
'''))
    assert cfg["bot"] == [Robot("人民路店群", "wecom", "CD_BOT_SH01", "", ("SH01",)),
                          Robot("主管群", "dingtalk", "CD_BOT_BOSS", "CD_BOT_BOSS_SECRET", ())]
    assert cfg["bot"][1].for_managers and not cfg["bot"][0].covers("SH02")
    assert load_config(write_config(tmp_path, ""))["bot"] == []


@pytest.mark.parametrize("body, where", [
    ('name = "a"\nkind = "slack"\nurl_env = "X"', "kind"),
    ('name = "a"\nkind = "wecom"\nurl_env = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=1"', "url_env"),
    ('name = "a"\nkind = "wecom"\nurl_env = "X"\nsecret_env = "Y"', "secret_env"),
    ('kind = "wecom"\nurl_env = "X"', "name"),
    ('name = "a"\nkind = "wecom"\nurl_env = "X"\nurl = "https://x"', "url"),
    ('name = "a"\nkind = "wecom"\nurl_env = "X"\nshops = "SH01"', "shops"),
])
def test_bad_bot_section_is_one_line(tmp_path, body, where):
    with pytest.raises(BadSetting) as e:
        load_config(write_config(tmp_path, f"[[bot]]\n{body}\n"))
    assert "[[bot]]" in str(e.value) and where in str(e.value)


def test_duplicate_robot_names_refused(tmp_path):
    one = '[[bot]]\nname = "a"\nkind = "wecom"\nurl_env = "X"\n'
    with pytest.raises(BadSetting, match="重复"):
        load_config(write_config(tmp_path, one + "\n" + one))


def test_an_older_state_db_gains_the_robot_columns_and_keeps_its_mails(tmp_path, robot_server):
    import sqlite3

    from scheduler.transport import EmlFolderTransport

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as c:   # the outbox as the version before robots created it
        c.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, dedupe_key VARCHAR(300) NOT NULL UNIQUE, "
                  "message_id VARCHAR(400) NOT NULL, recipient VARCHAR(300) NOT NULL, subject TEXT NOT NULL, "
                  "body_text TEXT NOT NULL, body_html TEXT NOT NULL, state VARCHAR(16) NOT NULL, "
                  "attempts INTEGER NOT NULL, next_at DATETIME NOT NULL, last_error TEXT, "
                  "created_at DATETIME NOT NULL, sent_at DATETIME, claimed_at DATETIME, claim_token VARCHAR(32))")
        c.execute("INSERT INTO outbox VALUES (1, 'k|person|2026-03-02', '<k@complaint-desk.local>', "
                  "'k@example.com', 's', 't', 'h', 'pending', 0, '2026-03-02 15:00:00', NULL, "
                  "'2026-03-02 15:00:00', NULL, NULL, NULL)")
    store = open_store(f"sqlite:///{path}")
    enqueue(store, [post(WECOM)])
    assert send_posts(store, transports(robot_server), now=NOW).sent == 1   # the old mail is not a post
    assert ob.send_due(store, EmlFolderTransport(tmp_path / "eml"), now=NOW).sent == 1
    assert len(robot_server.posts) == 1 and len(list((tmp_path / "eml").glob("*.eml"))) == 1


def test_mail_list_names_the_robot(store, robot_server):
    from click.testing import CliRunner

    from scheduler.commands import mail_cmd

    enqueue(store, [post(FEISHU)])
    send_posts(store, transports(robot_server), now=NOW)
    r = CliRunner().invoke(mail_cmd, ["list", "--store", store.url])
    assert r.exit_code == 0 and f"sent\t{NOW:%Y-%m-%d %H:%M}\t机器人:{FEISHU.name}" in r.output, r.output
