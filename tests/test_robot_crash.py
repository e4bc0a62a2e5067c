"""A SIGKILL while posting never doubles a group robot post (the robot twin of test_mail_crash).

A child process posts the outbox to the loopback Feishu endpoint (signature checked) through the
real httpx transport and is killed at seeded random moments, then started again until the outbox
drains. Kills before the request cost nothing (the claim goes stale and a later run posts it);
kills after it leave the post ``unknown``, never posted twice.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

import scheduler.api  # noqa: F401  (registers the scheduler tables before the store opens)
from complaint_core.store import open_store
from complaint_core.store.sched_tables import outbox
from scheduler.outbox import queue_posts
from scheduler.robots import Post

ROOT = Path(__file__).resolve().parents[1]
POSTS = 16
KILLS = 8
CLAIM_TTL = 1.0

CHILD = r"""
import sys, time
from datetime import datetime
from sqlalchemy import func, select
import scheduler.api
from complaint_core.store import open_store
from complaint_core.store.sched_tables import outbox
from scheduler.outbox import send_posts
from scheduler.robots import Robot
from scheduler.webhook import WebhookTransport

url, hook, ttl = sys.argv[1], sys.argv[2], float(sys.argv[3])
store = open_store(url)
robot = Robot("主管群", "feishu", "X", "Y", ())
tr = {robot.name: WebhookTransport(robot, hook, "fs-secret", timeout=ttl)}
print("ready", flush=True)
give_up = time.monotonic() + 20
while time.monotonic() < give_up:
    send_posts(store, tr, now=datetime.now())
    with store.begin() as c:
        left = c.execute(select(func.count()).select_from(outbox).where(
            outbox.c.state.in_(("pending", "sending", "in_data")))).scalar()
    if not left:
        sys.exit(0)
    time.sleep(0.05)
sys.exit(3)
"""


def start_child(url: str, hook: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", CHILD, url, hook, str(CLAIM_TTL)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.stdout is not None
    line = p.stdout.readline()
    assert line.strip() == "ready", (line, p.stderr.read() if p.stderr else "")
    return p


@pytest.mark.slow   # each restarted child imports the product (about a second on a busy machine)
def test_sigkill_while_posting_never_doubles_a_post(tmp_path, robot_server):
    robot_server.per_minute = 10_000
    robot_server.reply_delay = 0.004     # a little time between the platform taking a post and its answer
    hook = robot_server.add("feishu", "fs", "fs-secret")
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    now = datetime.now()
    with store.begin() as c:
        assert queue_posts(c, [Post("主管群", f"bot|主管群|digest|{i}", f"提醒 {i}", f"第 {i} 条", f"第 {i} 条", ())
                               for i in range(POSTS)], now=now) == POSTS

    rng = random.Random(20261201)
    kills = 0
    while kills < KILLS:
        child = start_child(url, hook)
        time.sleep(rng.uniform(0.0, 0.05))
        if child.poll() is not None:
            child.communicate()
            break
        child.send_signal(signal.SIGKILL)
        child.communicate()
        kills += 1
    final = start_child(url, hook)
    _out, err = final.communicate(timeout=60)
    assert final.returncode == 0, err

    with store.begin() as c:
        rows = {r.dedupe_key: r for r in c.execute(select(outbox))}
    received = Counter(int(re.search(r"第 (\d+) 条", p.body["content"]["text"]).group(1)) for p in robot_server.posts)
    by_state = Counter(r.state for r in rows.values())
    print(f"\n{kills} kills; received {len(received)}; states {dict(by_state)}")
    assert kills >= 6, "the outbox drained before enough kills landed"
    assert [n for n, k in received.items() if k > 1] == [], "a post arrived twice"
    for i in range(POSTS):
        r = rows[f"bot|主管群|digest|{i}"]
        # nothing lost: posted, or a person is told to check the group (unknown)
        assert (i in received and r.state in ("sent", "unknown")) or (i not in received and r.state == "unknown")
        if r.state == "sent":
            assert i in received
    assert by_state["pending"] == by_state["sending"] == by_state["in_data"] == 0
    assert any(r.attempts > 1 and r.state == "sent" for r in rows.values()), "no kill landed before the request"


def test_killed_while_waiting_for_the_answer_is_unknown_never_reposted(tmp_path, robot_server):
    robot_server.reply_delay = 30.0   # the platform has the post; its answer never comes in time
    hook = robot_server.add("feishu", "fs", "fs-secret")
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    with store.begin() as c:
        queue_posts(c, [Post("主管群", "bot|主管群|digest|0", "提醒", "第 0 条", "第 0 条", ())], now=datetime.now())
    child = start_child(url, hook)
    give_up = time.monotonic() + 20
    while not robot_server.posts and time.monotonic() < give_up:
        time.sleep(0.01)
    assert robot_server.posts, "the child never posted"
    child.send_signal(signal.SIGKILL)   # between the platform taking it and its answer
    child.communicate()
    robot_server.reply_delay = 0.0
    final = start_child(url, hook)
    _out, err = final.communicate(timeout=60)
    assert final.returncode == 0, err
    with store.begin() as c:
        row = c.execute(select(outbox)).one()
    assert row.state == "unknown" and len(robot_server.posts) == 1
