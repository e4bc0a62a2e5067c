"""Robot transports: the HTTPS webhook (httpx) and, when the URL variable is not set, a .json folder.

Same two-phase contract as the mail transports: ``send(row, before_data)`` calls ``before_data()``
just before the request goes out. Until then the platform has nothing (a crash or an error is
safe to retry); from then on a lost answer means the group may have the post, so it is never
posted again automatically (state ``unknown``). A connection that never opened is the one
exception: httpx says so (ConnectError / ConnectTimeout), nothing left this computer, and the
outbox puts the post back to pending.

All three platforms answer HTTP 200 with an error code in the JSON body, so the code decides:
rate limits are retried later, a wrong key/token/signature stops this robot's posts for this run
with one line naming the robot (they stay pending for after the fix), other refusals fail the post.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx

from .robots import (
    KIND_ZH_NAME,
    MIN_GAP_SECONDS,
    SETUP_HINT,
    Robot,
    classify,
    payload,
    reply_code,
    signed,
)
from .transport import (
    PermanentFailure,
    RateLimited,
    SetupFailure,
    TemporaryFailure,
    Transport,
    UnknownOutcome,
)

BeforePost = Callable[[], None]


@dataclass(frozen=True, slots=True)
class OutgoingPost:
    """What the outbox hands a robot transport: one stored post."""

    key: str
    title: str
    text: str
    markdown: str
    mentions: tuple[tuple[str, str], ...]

    def body(self, kind: str) -> dict[str, Any]:
        return payload(kind, self.title, self.text, self.markdown, self.mentions)


class PostTransport(Transport[OutgoingPost], Protocol):
    """A robot's way out (``WebhookTransport`` or ``JsonFolderTransport``), closed after the run."""

    def close(self) -> None: ...


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(robot: Robot, url: str) -> httpx.URL:
    """The webhook URL, refused unless https (its key travels in it) or on this computer (tests)."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError) as e:
        raise SetupFailure(f"{robot.label()}：环境变量 {robot.url_env} 不是有效的网址（{e}）") from None
    if parsed.scheme == "https" and parsed.host:
        return parsed
    if parsed.scheme == "http" and is_loopback(parsed.host):
        return parsed
    # Not the URL itself in the message: its key is a secret and this line goes to the log.
    raise SetupFailure(f"{robot.label()}：拒绝使用非 https 的 Webhook 地址（环境变量 {robot.url_env}，"
                       f"{parsed.scheme or '无协议'}://{parsed.host or '?'}…）；请复制平台给出的 https 地址")


@dataclass
class WebhookTransport:
    robot: Robot
    url: str
    secret: str = ""
    timeout: float = 10.0
    client: httpx.Client | None = None
    clock: Callable[[], float] = time.time   # real time: the platforms check the signature's age

    idempotent = False
    _last_post: float = field(default=0.0, repr=False)

    @property
    def claim_ttl(self) -> timedelta:
        return timedelta(seconds=self.timeout)

    def _client(self) -> httpx.Client:
        if self.client is None:
            # retries=0: httpx only ever retries connecting, but a post must leave this computer at
            # most once, so nothing is retried below the outbox. No redirects: a moved webhook is
            # a wrong URL, and following it would post twice if the first hop had already taken it.
            self.client = httpx.Client(transport=httpx.HTTPTransport(retries=0), timeout=self.timeout,
                                       follow_redirects=False, trust_env=True)
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def send(self, post: OutgoingPost, before_data: BeforePost | None = None) -> None:
        robot = self.robot
        url = check_url(robot, self.url)
        if robot.secret_env and not self.secret:
            raise SetupFailure(f"{robot.label()}：配置了 secret_env = {robot.secret_env}，但该环境变量未设置")
        gap = MIN_GAP_SECONDS[robot.kind]   # Feishu: at most 5 posts a second per bot
        wait = self._last_post + gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        params, body = signed(robot.kind, post.body(robot.kind), self.secret, unix_time=self.clock())
        target = url.copy_merge_params(params) if params else url
        # UTF-8, not \u escapes: Chinese text stays a third of the size under the platforms' 20 KB
        wire = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        client = self._client()   # built before the point of no return: it takes a while (TLS setup)
        if before_data is not None:
            before_data()   # may raise ClaimLost: nothing posted
        self._last_post = time.monotonic()
        try:
            response = client.post(target, content=wire, headers={"Content-Type": "application/json; charset=utf-8"})
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            # The connection never opened: the platform has nothing, a retry is safe.
            raise TemporaryFailure(f"{robot.label()}：无法连接（{type(e).__name__}）") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            raise SetupFailure(f"{robot.label()}：Webhook 地址无效（{e}）") from None
        except httpx.HTTPError as e:
            raise UnknownOutcome(f"{robot.label()}：发出后未收到回复（{type(e).__name__}）") from None
        self._judge(response)

    def _judge(self, response: httpx.Response) -> None:
        robot, status = self.robot, response.status_code
        if status == 429:
            raise RateLimited(f"{robot.label()}：平台限流（HTTP 429），稍后重发")
        if status in (401, 403, 404):
            raise SetupFailure(f"{robot.label()}：平台拒绝（HTTP {status}），{SETUP_HINT[robot.kind]}"
                               f"（环境变量 {robot.url_env}）")
        if status in (502, 503, 504):
            # A gateway answered that the service is not there: the post did not reach it.
            raise TemporaryFailure(f"{robot.label()}：平台暂不可用（HTTP {status}）")
        if status != 200:
            raise UnknownOutcome(f"{robot.label()}：平台回复 HTTP {status}，不确定是否已发出")
        try:
            code, msg = reply_code(robot.kind, response.json())
        except (ValueError, json.JSONDecodeError) as e:
            raise UnknownOutcome(f"{robot.label()}：回复无法识别（{e}），不确定是否已发出") from None
        verdict = classify(robot.kind, code)
        if verdict == "ok":
            return
        if verdict == "rate":
            raise RateLimited(f"{robot.label()}：发送过快被限流（{code} {msg}），稍后重发")
        if verdict == "setup":
            what = f"环境变量 {robot.url_env}" + (f" / {robot.secret_env}" if robot.secret_env else "")
            raise SetupFailure(f"{robot.label()}：平台拒绝（{code} {msg}）：{SETUP_HINT[robot.kind]}（{what}）；"
                               f"此机器人的消息保留待发，修正后自动补发")
        raise PermanentFailure(f"{robot.label()}：平台拒收此消息（{code} {msg}）")


@dataclass
class JsonFolderTransport:
    """The robot's URL variable is not set: each post becomes ``<folder>/<robot>/<key>.json``, the
    exact body the group would receive, so a newcomer (and the demo) sees what each group gets."""

    robot: Robot
    folder: Path

    idempotent = True   # writing the same file twice gives the same file
    claim_ttl = timedelta(seconds=30)

    def close(self) -> None:
        return None

    def send(self, post: OutgoingPost, before_data: BeforePost | None = None) -> None:
        folder = Path(self.folder) / _file_name(self.robot.name)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{post.key}.json"
        if target.exists():
            return
        doc = {"robot": self.robot.name, "kind": self.robot.kind, "platform": KIND_ZH_NAME[self.robot.kind],
               "note": f"环境变量 {self.robot.url_env} 未设置：此消息未发出，仅写入本文件",
               "body": post.body(self.robot.kind)}
        tmp = target.with_name(f".{post.key}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)


def _file_name(name: str) -> str:
    """A robot's name as a folder name on Windows too."""
    return "".join("_" if c in '<>:"/\\|?*' or ord(c) < 32 else c for c in name).strip(" .") or "bot"


def robot_transports(robots: list[Robot], outbox_dir: str | Path, *, timeout: float = 10.0,
                     environ: Mapping[str, str] | None = None) -> dict[str, PostTransport]:
    """One transport per robot, from the environment: the webhook when its URL variable is set,
    otherwise the .json folder beside the .eml outbox."""
    env = os.environ if environ is None else environ
    out: dict[str, PostTransport] = {}
    for r in robots:
        url = env.get(r.url_env, "").strip()
        if not url:
            out[r.name] = JsonFolderTransport(r, Path(outbox_dir))
        else:
            secret = env.get(r.secret_env, "").strip() if r.secret_env else ""
            out[r.name] = WebhookTransport(r, url, secret, timeout=timeout)
    return out
