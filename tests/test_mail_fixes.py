"""Three mail faults found while adding the robots, each against a real aiosmtpd server.

- ``user`` set against a server without AUTH: one clear error, mails stay pending (not a
  traceback leaving a mail in ``sending``).
- ``tls = "none"`` with ``user``: the run stops with one error and keeps every mail pending
  (it used to mark each one ``failed``).
- ``.eml`` and SMTP Date headers carry the shop's zone, not ``-0000``.
"""

from __future__ import annotations

import email
import email.policy
from datetime import datetime
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from complaint_core.store import open_store
from scheduler.mail import Mail, compose, mail_date
from scheduler.outbox import queue, send_due, states
from scheduler.transport import EmlFolderTransport, SmtpTransport

NOW = datetime(2026, 3, 2, 9, 0)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def store_with_mails(tmp_path, n=3):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    with store.begin() as c:
        queue(c, [Mail(f"p{i}|person|2026-03-02", f"p{i}@example.com", f"提醒 {i}", "正文", "<p>正文</p>")
                  for i in range(n)], now=NOW)
    return store


def test_user_against_a_server_without_auth_is_one_error_and_keeps_mails_pending(tmp_path, smtp_server):
    server = smtp_server()   # no AUTH offered
    store = store_with_mails(tmp_path)
    tr = SmtpTransport("127.0.0.1", server.port, user="shop", tls="none", allow_plain_auth=True, timeout=5)
    rep = send_due(store, tr, now=NOW)
    assert rep.sent == 0 and rep.failed == 0 and len(rep.errors) == 1
    assert "AUTH" in rep.errors[0] and "user" in rep.errors[0]
    assert set(states(store).values()) == {"pending"} and server.messages == []
    fixed = SmtpTransport("127.0.0.1", server.port, tls="none", timeout=5)   # [mail] user removed
    assert send_due(store, fixed, now=NOW).sent == 3 and len(server.messages) == 3


def test_tls_none_with_user_stops_once_and_keeps_them_pending(tmp_path, smtp_server):
    server = smtp_server(auth=True)
    store = store_with_mails(tmp_path)
    rep = send_due(store, SmtpTransport("127.0.0.1", server.port, user="shop", tls="none", timeout=5), now=NOW)
    assert rep.failed == 0 and len(rep.errors) == 1 and "未加密" in rep.errors[0]
    assert set(states(store).values()) == {"pending"} and server.handler.attempts == 0


def test_date_header_carries_the_shop_zone(tmp_path, smtp_server):
    assert mail_date(NOW, SHANGHAI).endswith("+0800")
    msg = compose(Mail("k", "a@example.com", "s", "t", "<p>t</p>"), sender="d@example.com", now=NOW, zone=SHANGHAI)
    assert parsedate_to_datetime(msg["Date"]) == NOW.replace(tzinfo=SHANGHAI)
    # the .eml folder and SMTP both write it
    store = store_with_mails(tmp_path, 1)
    send_due(store, EmlFolderTransport(tmp_path / "outbox"), now=NOW, zone=SHANGHAI)
    eml = email.message_from_bytes(next((tmp_path / "outbox").glob("*.eml")).read_bytes(), policy=email.policy.default)
    assert "-0000" not in eml["Date"] and parsedate_to_datetime(eml["Date"]).utcoffset().total_seconds() == 8 * 3600
    server = smtp_server()
    store2 = open_store(f"sqlite:///{tmp_path / 'two.db'}")
    with store2.begin() as c:
        queue(c, [Mail("k2", "b@example.com", "s", "t", "<p>t</p>")], now=NOW)
    send_due(store2, SmtpTransport("127.0.0.1", server.port, tls="none", timeout=5), now=NOW, zone=SHANGHAI)
    assert server.messages[0]["Date"].endswith("+0800")


def test_without_a_zone_the_computers_own_offset_is_written():
    written = parsedate_to_datetime(mail_date(NOW))
    assert written.utcoffset() is not None and written.replace(tzinfo=None) == NOW
    assert written.utcoffset() == NOW.astimezone().utcoffset()
