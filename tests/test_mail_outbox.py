"""Digests through a real aiosmtpd server: exactly once across outages, restarts and lost replies."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert

import scheduler.api  # noqa: F401  (registers the scheduler tables before the store opens)
from complaint_core.rules_book import Person, Rules
from complaint_core.store import open_store
from complaint_core.store import tables as t
from complaint_core.store.db import content_hash, encode_values, record_key
from scheduler.api import scan_once, send_due
from scheduler.outbox import states
from scheduler.transport import EmlFolderTransport, SmtpTransport

RULES = Rules(staff=(Person("张三", "门店", "李店长", "zs@example.com"),
                     Person("李店长", "门店", "", "boss@example.com")))
NOW = datetime(2026, 3, 2, 15, 0)


def fill(store, n=2):
    with store.begin() as c:
        for i in range(n):
            values = {"complaint_id": f"A-{i}", "shop": "A", "received_at": datetime(2026, 3, 2, 10, i),
                      "responsible_person": "张三", "responsible_dept": "门店", "validity": "成立"}
            data = encode_values(values)
            c.execute(insert(t.source_rows).values(
                source_path="/shops/A.xlsx", sheet="投诉登记", row=i + 2, shop="A", complaint_id=f"A-{i}",
                record_key=record_key("A", f"A-{i}", "", 0), content_hash=content_hash(data), data=data,
                version=1, first_seen=NOW, last_seen=NOW, deleted=False))


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    fill(open_store(url))
    return url


def smtp(server, **kw):
    return SmtpTransport("127.0.0.1", server.port, tls=kw.pop("tls", "none"), timeout=5, **kw)




def test_digests_arrive_once_across_restarts(db, smtp_server):
    server = smtp_server()
    rep = scan_once(open_store(db), now=NOW, rules=RULES)
    assert rep.overdue == 2 and rep.queued_mails == 2 and rep.new_penalties == 2
    assert send_due(open_store(db), smtp(server), now=NOW).sent == 2
    # A restart: a new Store object, the same scan and send again -> nothing new.
    rep2 = scan_once(open_store(db), now=NOW + timedelta(minutes=5), rules=RULES)
    assert rep2.queued_mails == 0 and rep2.new_penalties == 0
    assert send_due(open_store(db), smtp(server), now=NOW + timedelta(minutes=5)).sent == 0
    assert len(server.messages) == 2
    person = next(m for m in server.messages if m["To"] == "zs@example.com")
    assert person["Message-ID"].endswith("@complaint-desk.local>")
    text = person.get_body(("plain",)).get_content()
    html = person.get_body(("html",)).get_content()
    assert "A-0" in text and "A-1" in text and "已逾期" in html
    boss = next(m for m in server.messages if m["To"] == "boss@example.com")
    assert "逾期 2 条" in boss["Subject"] and "A-0" in boss.get_body(("plain",)).get_content()


def test_server_down_then_up_and_451_retry(db, smtp_server):
    server = smtp_server(mode="451")
    scan_once(open_store(db), now=NOW, rules=RULES)
    rep = send_due(open_store(db), smtp(server), now=NOW)
    assert rep.retry == 2 and server.messages == []
    server.stop()
    # Not yet due again (backoff): nothing tried; then due but the server is down.
    assert send_due(open_store(db), smtp(server), now=NOW + timedelta(seconds=30)).retry == 0
    assert send_due(open_store(db), smtp(server), now=NOW + timedelta(minutes=2)).retry == 2
    server.handler.mode = "ok"
    server.start()
    assert send_due(open_store(db), smtp(server), now=NOW + timedelta(minutes=10)).sent == 2
    assert send_due(open_store(db), smtp(server), now=NOW + timedelta(hours=5)).sent == 0
    assert len(server.messages) == 2 and set(states(open_store(db)).values()) == {"sent"}


def test_lost_reply_after_data_is_not_resent(db, smtp_server):
    server = smtp_server(mode="drop_after_data")
    scan_once(open_store(db), now=NOW, rules=RULES)
    rep = send_due(open_store(db), smtp(server), now=NOW)
    assert rep.unknown == 2
    server.handler.mode = "ok"
    assert send_due(open_store(db), smtp(server), now=NOW + timedelta(hours=9)).sent == 0
    assert len(server.messages) == 2


def test_wrong_password_is_one_clear_error(db, smtp_server, monkeypatch):
    server = smtp_server(auth=True)
    monkeypatch.setenv("COMPLAINT_DESK_SMTP_PASSWORD", "wrong")
    scan_once(open_store(db), now=NOW, rules=RULES)
    tr = smtp(server, user="shop", allow_plain_auth=True)
    rep = send_due(open_store(db), tr, now=NOW)
    assert rep.sent == 0 and len(rep.errors) == 1 and "COMPLAINT_DESK_SMTP_PASSWORD" in rep.errors[0]
    assert server.handler.attempts == 0
    monkeypatch.setenv("COMPLAINT_DESK_SMTP_PASSWORD", "right")
    assert send_due(open_store(db), tr, now=NOW).sent == 2


def test_auth_refused_without_tls_unless_local_relay(db, smtp_server, monkeypatch):
    server = smtp_server(auth=True)
    monkeypatch.setenv("COMPLAINT_DESK_SMTP_PASSWORD", "right")
    scan_once(open_store(db), now=NOW, rules=RULES)
    rep = send_due(open_store(db), smtp(server, user="shop"), now=NOW)
    # A setting, not a refusal of these mails: one error, the run stops, both wait for the fix.
    assert rep.failed == 0 and len(rep.errors) == 1 and "未加密" in rep.errors[0] and server.messages == []
    assert set(states(open_store(db)).values()) == {"pending"} and server.handler.attempts == 0
    relay = send_due(open_store(db), smtp(server, user="shop", allow_plain_auth=True), now=NOW)
    assert relay.sent == 2 and len(server.messages) == 2


def test_starttls_verified_and_untrusted_cert_refused(db, smtp_server):
    server = smtp_server(tls=True)
    scan_once(open_store(db), now=NOW, rules=RULES)
    untrusted = send_due(open_store(db), smtp(server, tls="starttls"), now=NOW)
    assert untrusted.failed == 2 and "证书" in untrusted.errors[0] and server.messages == []


def test_starttls_with_trusted_cert_delivers(db, smtp_server):
    server = smtp_server(tls=True)
    scan_once(open_store(db), now=NOW, rules=RULES)
    rep = send_due(open_store(db), smtp(server, tls="starttls", context=server.client_context), now=NOW)
    assert rep.sent == 2 and len(server.messages) == 2


def test_server_without_starttls_is_one_clear_error_and_the_mails_wait(db, smtp_server, tmp_path, caplog):
    """tls = "starttls" against a server that does not offer it (port 465 SSL-only servers and
    plain relays do this): one error naming the server and what to set, not eight retries of
    "cannot connect"; the mails stay pending and go out once desk.toml is fixed."""
    from scheduler.daemon import send_job
    from scheduler.mail import Mail, compose
    from scheduler.transport import PermanentFailure

    server = smtp_server()   # aiosmtpd without a TLS context: EHLO lists no STARTTLS
    with pytest.raises(PermanentFailure) as e:
        smtp(server, tls="starttls").send(compose(Mail("k", "zs@example.com", "s", "t", "h"), sender="a@b.c", now=NOW))
    for part in (f"127.0.0.1:{server.port}", "不提供 STARTTLS", 'tls = "ssl"', "465", 'tls = "none"'):
        assert part in str(e.value)
    scan_once(open_store(db), now=NOW, rules=RULES)
    rep = send_due(open_store(db), smtp(server, tls="starttls"), now=NOW)
    assert (rep.sent, rep.retry, rep.failed) == (0, 0, 0) and len(rep.errors) == 1
    assert "STARTTLS" in rep.errors[0] and server.messages == []
    assert set(states(open_store(db)).values()) == {"pending"}
    # The daemon's send job says so in its log (it has no terminal).
    cfg = tmp_path / "desk.toml"
    cfg.write_text(f'[store]\nurl = "{db}"\n[mail]\nhost = "127.0.0.1"\nport = {server.port}\ntls = "starttls"\n'
                   'timeout_seconds = 5\n', encoding="utf-8")
    with caplog.at_level("ERROR", logger="scheduler.daemon"):
        send_job(str(cfg))
    assert [r.getMessage() for r in caplog.records if "STARTTLS" in r.getMessage()]
    assert set(states(open_store(db)).values()) == {"pending"}
    # Fixed (a local relay without TLS): every mail goes out, once.
    assert send_due(open_store(db), smtp(server), now=NOW).sent == 2 and len(server.messages) == 2


def test_eml_folder_exactly_once(db, tmp_path):
    out = tmp_path / "outbox"
    scan_once(open_store(db), now=NOW, rules=RULES)
    assert send_due(open_store(db), EmlFolderTransport(out), now=NOW).sent == 2
    scan_once(open_store(db), now=NOW + timedelta(hours=1), rules=RULES)
    send_due(open_store(db), EmlFolderTransport(out), now=NOW + timedelta(hours=1))
    assert len(list(out.glob("*.eml"))) == 2


# --- Two-phase sending: what a sender killed at each step leaves behind, and what the next run does.
# The crash itself is exercised with real SIGKILLs in test_mail_crash.py; here each state is set
# exactly as the killed sender would have committed it, and a real send run takes over.

def leave(url, key_start, **values):
    from sqlalchemy import update

    from complaint_core.store.sched_tables import outbox
    with open_store(url).begin() as c:
        assert c.execute(update(outbox).where(outbox.c.dedupe_key.startswith(key_start)).values(**values)).rowcount


def test_dead_claim_before_data_is_sent_later_a_live_one_is_left(db, smtp_server):
    server = smtp_server()
    scan_once(open_store(db), now=NOW, rules=RULES)
    # 张三's sender died after claiming (10 s ago, timeout 5 s); 李店长's claim is a second old.
    leave(db, "张三|", state="sending", claimed_at=NOW - timedelta(seconds=10), claim_token="dead", attempts=1)
    leave(db, "李店长|", state="sending", claimed_at=NOW - timedelta(seconds=1), claim_token="live", attempts=1)
    rep = send_due(open_store(db), smtp(server), now=NOW)
    assert (rep.recovered, rep.sent) == (1, 1)
    assert [m["To"] for m in server.messages] == ["zs@example.com"]
    assert states(open_store(db))[f"李店长|manager|{NOW.date()}"] == "sending"
    later = send_due(open_store(db), smtp(server), now=NOW + timedelta(seconds=6))
    assert later.recovered == 1 and later.sent == 1 and len(server.messages) == 2
    assert set(states(open_store(db)).values()) == {"sent"}


def test_dead_sender_past_data_leaves_unknown_with_a_warning(db, smtp_server, caplog):
    server = smtp_server()
    scan_once(open_store(db), now=NOW, rules=RULES)
    leave(db, "张三|", state="in_data", claimed_at=NOW - timedelta(minutes=1), claim_token="dead", attempts=1)
    with caplog.at_level("WARNING", logger="scheduler.outbox"):
        rep = send_due(open_store(db), smtp(server), now=NOW)
    assert rep.unknown == 1 and rep.sent == 1 and [m["To"] for m in server.messages] == ["boss@example.com"]
    warning = next(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    from scheduler.mail import Mail
    mid = Mail(f"张三|person|{NOW.date()}", "", "", "", "").message_id
    assert mid in warning and "zs@example.com" in warning and "mail resend" in warning
    # Never resent automatically, however many runs follow.
    assert send_due(open_store(db), smtp(server), now=NOW + timedelta(days=1)).sent == 0
    assert len(server.messages) == 1 and states(open_store(db))[f"张三|person|{NOW.date()}"] == "unknown"


def test_taken_over_claim_stops_before_data(db, smtp_server):
    """A sender whose claim went stale and was taken over must not reach DATA as well."""
    server = smtp_server()
    real = smtp(server)

    class SlowFirstSender:
        # A sender that stalls before DATA (a slow server) while a later run takes its mail over.
        idempotent, claim_ttl, stalled = False, real.claim_ttl, False

        def send(self, msg, before_data=None):
            def stall_then_commit():
                if not self.stalled:
                    self.stalled = True
                    later = send_due(open_store(db), real, now=NOW + real.claim_ttl + timedelta(seconds=1))
                    assert later.recovered == 1 and later.sent == 2
                before_data()
            real.send(msg, stall_then_commit)

    scan_once(open_store(db), now=NOW, rules=RULES)
    rep = send_due(open_store(db), SlowFirstSender(), now=NOW)
    assert rep.lost_claims == 1 and rep.sent == 0
    ids = [m["Message-ID"] for m in server.messages]
    assert len(ids) == len(set(ids)) == 2 and set(states(open_store(db)).values()) == {"sent"}


def test_old_outbox_table_is_upgraded_and_its_stuck_rows_settled(tmp_path):
    """A state.db from the one-phase version: `sending` rows may be past DATA (unknown) unless
    the transport is the idempotent .eml folder."""
    import sqlite3

    for transport, expected, files in ((None, "unknown", 0), ("eml", "sent", 1)):
        path = tmp_path / f"old-{expected}.db"
        with sqlite3.connect(path) as c:
            c.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, dedupe_key VARCHAR(300) NOT NULL UNIQUE, "
                      "message_id VARCHAR(400) NOT NULL, recipient VARCHAR(300) NOT NULL, subject TEXT NOT NULL, "
                      "body_text TEXT NOT NULL, body_html TEXT NOT NULL, state VARCHAR(16) NOT NULL, "
                      "attempts INTEGER NOT NULL, next_at DATETIME NOT NULL, last_error TEXT, "
                      "created_at DATETIME NOT NULL, sent_at DATETIME)")
            c.execute("INSERT INTO outbox VALUES (1, 'k|person|2026-03-02', '<k@complaint-desk.local>', "
                      "'k@example.com', 's', 't', 'h', 'sending', 1, '2026-03-02 15:00:00', NULL, "
                      "'2026-03-02 15:00:00', NULL)")
        out = tmp_path / f"eml-{expected}"
        tr = EmlFolderTransport(out) if transport else SmtpTransport("127.0.0.1", 9, tls="none", timeout=1)
        send_due(open_store(f"sqlite:///{path}"), tr, now=NOW)
        assert states(open_store(f"sqlite:///{path}")) == {"k|person|2026-03-02": expected}
        assert len(list(out.glob("*.eml"))) == files


def test_configured_sender_is_the_from(db, smtp_server):
    """A shop's server only relays for its own address: mail.sender is the From and MAIL FROM."""
    server = smtp_server()
    scan_once(open_store(db), now=NOW, rules=RULES)
    assert send_due(open_store(db), smtp(server), now=NOW, sender="desk@shop.example").sent == 2
    assert {m["From"] for m in server.messages} == {"desk@shop.example"}
    assert server.handler.senders == ["desk@shop.example"] * 2
