"""A real HTTP server on 127.0.0.1 that speaks the three group-robot APIs, the way the platforms do.

- WeCom:    POST /cgi-bin/webhook/send?key=KEY            unknown key -> 93000
- DingTalk: POST /robot/send?access_token=T&timestamp=&sign=   unknown token -> 300001; with a secret,
            the signature (HMAC-SHA256 keyed by the secret over "ms\\nsecret", base64, URL-encoded)
            and a timestamp within an hour are checked -> 310000
- Feishu:   POST /open-apis/bot/v2/hook/TOKEN              unknown token -> 19001; with a secret,
            ``timestamp``/``sign`` in the body are checked (key "s\\nsecret", empty message) -> 19021

Every answer is HTTP 200 with the code in the JSON body, as on the real platforms. Each robot
accepts ``per_minute`` posts a minute (then 45009 / 130101 / 11232), and ``rate_limit_next(n)``
makes the next n requests answer the rate-limit code. A post is stored as soon as it is accepted,
before the (optionally slow, ``reply_delay``) reply, so a client killed while waiting has posted.
The signature check is written out here from the platforms' documentation, not imported from the
product, so a wrong signature in the product fails the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

RATE = {"wecom": 45009, "dingtalk": 130101, "feishu": 11232}
BAD_KEY = {"wecom": 93000, "dingtalk": 300001, "feishu": 19001}
BAD_SIGN = {"dingtalk": 310000, "feishu": 19021}


@dataclass
class Received:
    kind: str
    robot: str        # key / token
    body: dict[str, Any]
    query: dict[str, str]


@dataclass
class RobotServer:
    per_minute: int = 20
    reply_delay: float = 0.0
    robots: dict[tuple[str, str], str] = field(default_factory=dict)   # (kind, key) -> secret
    posts: list[Received] = field(default_factory=list)
    answers: list[tuple[str, str, int]] = field(default_factory=list)   # (kind, key, code) of every request
    _forced_rate: int = 0
    _times: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: Any = None

    def add(self, kind: str, key: str, secret: str = "") -> str:
        """Register a robot; returns its webhook URL on this server."""
        self.robots[(kind, key)] = secret
        return self.url(kind, key)

    def url(self, kind: str, key: str) -> str:
        base = f"http://127.0.0.1:{self.port}"
        return {"wecom": f"{base}/cgi-bin/webhook/send?key={key}",
                "dingtalk": f"{base}/robot/send?access_token={key}",
                "feishu": f"{base}/open-apis/bot/v2/hook/{key}"}[kind]

    def rate_limit_next(self, n: int) -> None:
        with self._lock:
            self._forced_rate = n

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def posts_to(self, kind: str, key: str) -> list[Received]:
        return [p for p in self.posts if p.kind == kind and p.robot == key]

    # ---- the platforms' rules ----

    def answer(self, path: str, query: dict[str, str], body: dict[str, Any]) -> tuple[str, str, int]:
        if path == "/cgi-bin/webhook/send":
            kind, key = "wecom", query.get("key", "")
        elif path == "/robot/send":
            kind, key = "dingtalk", query.get("access_token", "")
        elif path.startswith("/open-apis/bot/v2/hook/"):
            kind, key = "feishu", path.rsplit("/", 1)[1]
        else:
            return "", "", -404
        if (kind, key) not in self.robots:
            return kind, key, BAD_KEY[kind]
        secret = self.robots[(kind, key)]
        if secret and not self._signature_ok(kind, secret, query, body):
            return kind, key, BAD_SIGN[kind]
        if not self._well_formed(kind, body):
            return kind, key, {"wecom": 40008, "dingtalk": 40035, "feishu": 9499}[kind]
        with self._lock:
            if self._forced_rate > 0:
                self._forced_rate -= 1
                return kind, key, RATE[kind]
            now = time.monotonic()
            recent = [t for t in self._times.get((kind, key), []) if now - t < 60]
            if len(recent) >= self.per_minute:
                self._times[(kind, key)] = recent
                return kind, key, RATE[kind]
            self._times[(kind, key)] = [*recent, now]
            self.posts.append(Received(kind, key, body, query))
        return kind, key, 0

    @staticmethod
    def _signature_ok(kind: str, secret: str, query: dict[str, str], body: dict[str, Any]) -> bool:
        if kind == "dingtalk":
            ts, sign = query.get("timestamp", ""), query.get("sign", "")
            if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3600 * 1000:
                return False
            mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
            return hmac.compare_digest(base64.b64encode(mac).decode(), sign)
        if kind == "feishu":
            ts, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
            if not ts.isdigit() or abs(int(ts) - time.time()) > 3600:
                return False
            mac = hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()
            return hmac.compare_digest(base64.b64encode(mac).decode(), sign)
        return True

    @staticmethod
    def _well_formed(kind: str, body: dict[str, Any]) -> bool:
        if kind == "wecom":
            t = body.get("msgtype")
            content = (body.get(t) or {}).get("content", "") if t in ("text", "markdown") else ""
            limit = 2048 if t == "text" else 4096
            return bool(content) and len(content.encode()) <= limit
        if kind == "dingtalk":
            md = body.get("markdown") or {}
            return body.get("msgtype") == "markdown" and bool(md.get("title")) and bool(md.get("text"))
        return body.get("msg_type") == "text" and bool((body.get("content") or {}).get("text")) \
            and len(json.dumps(body, ensure_ascii=False).encode()) <= 20 * 1024

    # ---- the HTTP server ----

    def start(self) -> RobotServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:   # noqa: N802 (http.server's name)
                split = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(split.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw.decode("utf-8"))
                except ValueError:
                    body = {}
                kind, key, code = server.answer(split.path, query, body if isinstance(body, dict) else {})
                with server._lock:
                    server.answers.append((kind, key, code))
                if code == -404:
                    self.send_response(404)
                    self.end_headers()
                    return
                if server.reply_delay:
                    time.sleep(server.reply_delay)
                reply = ({"code": code, "msg": "success" if code == 0 else "error", "data": {}} if kind == "feishu"
                         else {"errcode": code, "errmsg": "ok" if code == 0 else "error"})
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        errors = self.handler_errors = []

        class Quiet(ThreadingHTTPServer):
            # a client that hangs up (a timeout under test) must not print a traceback into the
            # CLI output a test reads: kept here instead, for a test that wants to look
            def handle_error(self, request: Any, client_address: Any) -> None:
                errors.append(sys.exc_info()[1])

        self._httpd = Quiet(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def robot_server():
    """A running RobotServer; ``robot_server.add(kind, key, secret)`` gives a robot's URL."""
    server = RobotServer().start()
    yield server
    server.stop()
