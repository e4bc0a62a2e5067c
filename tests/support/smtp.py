"""A real SMTP server (aiosmtpd) on 127.0.0.1 with fault injection and an optional STARTTLS cert.

``smtp_server`` yields a factory: ``start(mode="ok"|"451"|"drop_after_data", tls=False,
auth=False, envelope_delay=0.0, data_delay=0.0)`` returns a running ``SmtpServer`` with
``.port``, ``.messages`` (parsed emails), ``.client_context`` (an SSL context trusting its
self-signed cert) and ``.stop()``/``.restart()``. The delays (seconds) slow MAIL/RCPT and the
reply to DATA, like a busy server, so that a sender killed at a random moment is often in the
middle of a conversation; a mail is stored as soon as its DATA arrives, before the slow reply.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    # Controller cannot bind port 0 (it connects to its own port to check), so we pick one.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    import ipaddress
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = folder / "cert.pem", folder / "key.pem"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


@dataclass
class Handler:
    mode: str = "ok"
    messages: list[Any] = field(default_factory=list)
    senders: list[str] = field(default_factory=list)   # MAIL FROM of each stored message
    attempts: int = 0
    envelope_delay: float = 0.0
    data_delay: float = 0.0

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        await asyncio.sleep(self.envelope_delay)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        await asyncio.sleep(self.envelope_delay)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.mode == "451":
            return "451 4.3.0 temporary failure, try later"
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=email.policy.default))
        self.senders.append(envelope.mail_from)
        await asyncio.sleep(self.data_delay)
        if self.mode == "drop_after_data":
            server.transport.close()   # the mail is stored, the reply is lost
            return "250 OK"
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"shop" and data.password == b"right"
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    def __init__(self, folder: Path, mode: str, tls: bool, auth: bool, envelope_delay: float = 0.0,
                 data_delay: float = 0.0) -> None:
        self.handler = Handler(mode, envelope_delay=envelope_delay, data_delay=data_delay)
        self.port = free_port()
        self.tls, self.auth, self.folder = tls, auth, folder
        self.client_context: ssl.SSLContext | None = None
        self._ctrl: Controller | None = None
        self.start()

    @property
    def messages(self) -> list[Any]:
        return self.handler.messages

    def start(self) -> None:
        kw: dict[str, Any] = {}
        if self.tls:
            crt, key = make_cert(self.folder)
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain(crt, key)
            kw.update(tls_context=server_ctx, require_starttls=True)
            self.client_context = ssl.create_default_context(cafile=str(crt))
        if self.auth:
            kw.update(authenticator=_authenticator, auth_require_tls=self.tls, auth_exclude_mechanism=["LOGIN"])
            if not self.tls:
                kw.update(auth_require_tls=False)
        self._ctrl = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kw)
        self._ctrl.start()

    def stop(self) -> None:
        if self._ctrl is not None:
            self._ctrl.stop()
            self._ctrl = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def smtp_server(tmp_path: Path):
    servers: list[SmtpServer] = []

    def start(mode: str = "ok", tls: bool = False, auth: bool = False, envelope_delay: float = 0.0,
              data_delay: float = 0.0) -> SmtpServer:
        folder = tmp_path / f"smtp{len(servers)}"
        folder.mkdir()
        s = SmtpServer(folder, mode, tls, auth, envelope_delay, data_delay)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
