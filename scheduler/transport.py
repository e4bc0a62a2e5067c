"""Mail transports: SMTP (TLS verified, timeouts, two-phase with the outbox) and an .eml folder.

``send(msg, before_data)`` calls ``before_data()`` after the server accepted the sender and
the recipients and before the DATA command. Up to that point the server cannot hold the mail,
so a failure (or a crash) is safe to retry; from DATA on, a lost reply means the server may
have it. The outbox commits that boundary in ``before_data`` so a restart knows which side of
it a killed sender was on.

Every failure is a ``DeliveryError`` (a ``ComplaintDeskError``): its message names the server
or the robot and the setting to check, in one line; the outbox decides from its class whether
the message is retried, failed, left ``unknown`` or the run stops (see outbox.py).
"""

from __future__ import annotations

import io
import os
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import getaddresses
from pathlib import Path
from typing import Protocol, TypeVar

from complaint_core.errors import ComplaintDeskError

BeforeData = Callable[[], None]
Message = TypeVar("Message", contravariant=True)


class Claims(Protocol):
    """What the outbox needs of a way out to settle the claims a killed sender left."""

    @property
    def idempotent(self) -> bool:
        """Sending the same message twice gives one result (a file): stale claims are redone."""

    @property
    def claim_ttl(self) -> timedelta:
        """A claim older than this belongs to a dead sender (every step of ``send`` times out sooner)."""


class Transport(Claims, Protocol[Message]):
    """One way out for the outbox: SMTP or the .eml folder (mails), a robot's webhook or its .json
    folder (posts, ``webhook.PostTransport``)."""

    def send(self, message: Message, before_data: BeforeData | None = None, /) -> None:
        """Deliver ``message``, calling ``before_data()`` at the point of no return; raises a
        ``DeliveryError`` subclass saying which side of that point it failed on."""


MailTransport = Transport[EmailMessage]


class DeliveryError(ComplaintDeskError):
    """A mail or a robot post did not get through; the message names the server or robot."""


class TemporaryFailure(DeliveryError):
    """4xx or connection trouble before DATA: the server has nothing, retry later with backoff."""


class RateLimited(TemporaryFailure):
    """The platform said "too fast" (a robot's 20 posts a minute): retried later, never dropped."""


class PermanentFailure(DeliveryError):
    """5xx: never retried."""


class SetupFailure(PermanentFailure):
    """The server and desk.toml do not fit together, so every mail would fail the same way: stop
    this run with one clear message and leave the mails pending for after the fix."""


class AuthFailure(SetupFailure):
    """Wrong user or password (535): stop this run, one clear message."""


class StartTlsMissing(SetupFailure):
    """``tls = "starttls"`` but the server does not offer STARTTLS: never send in the clear."""


class UnknownOutcome(DeliveryError):
    """The reply after DATA was lost: the server may have the mail, so it is not resent."""


class ClaimLost(DeliveryError):
    """Another send run took this mail over (our claim had gone stale): we stop before DATA.
    Never shown to a person: the outbox counts it (``SendReport.lost_claims``)."""


PASSWORD_ENV = "COMPLAINT_DESK_SMTP_PASSWORD"


def _refusal(code: int, what: str) -> DeliveryError:
    text = f"{code} {what}"
    return TemporaryFailure(text) if 400 <= code < 500 else PermanentFailure(text)


def _flatten(msg: EmailMessage, utf8: bool) -> bytes:
    buf = io.BytesIO()
    policy = msg.policy
    if utf8 and isinstance(policy, EmailPolicy):   # compose() builds every mail with one
        policy = policy.clone(utf8=True)
    BytesGenerator(buf, policy=policy).flatten(msg, linesep="\r\n")
    return buf.getvalue()


@dataclass
class SmtpTransport:
    host: str
    port: int = 587
    user: str = ""
    sender: str = ""
    tls: str = "starttls"            # starttls | ssl | none
    allow_plain_auth: bool = False   # only for a local relay on 127.0.0.1
    timeout: float = 30.0
    context: ssl.SSLContext | None = None

    # SMTP has no idempotency: a mail past DATA is never resent automatically.
    idempotent = False

    @property
    def claim_ttl(self) -> timedelta:
        """A pre-DATA claim older than this belongs to a dead sender (every socket step times out)."""
        return timedelta(seconds=self.timeout)

    def _connect(self) -> smtplib.SMTP:
        ctx = self.context or ssl.create_default_context()
        if self.tls == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ctx)
        s = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.tls == "starttls":
            try:
                s.ehlo()
                if not s.has_extn("starttls"):
                    # Not a passing outage: retrying would only repeat it, and going on without
                    # TLS would send the password and the customers' names in the clear.
                    raise StartTlsMissing(
                        f"邮件服务器 {self.host}:{self.port} 不提供 STARTTLS（tls = \"starttls\"）："
                        f"若服务器用 SSL 连接，请在 desk.toml 的 [mail] 设 tls = \"ssl\"、port = 465；"
                        f"本机中继请设 tls = \"none\"")
                s.starttls(context=ctx)
            except BaseException:
                s.close()
                raise
        return s

    def send(self, msg: EmailMessage, before_data: BeforeData | None = None) -> None:
        password = os.environ.get(PASSWORD_ENV, "")
        if self.user and self.tls == "none" and not self.allow_plain_auth:
            # A setting, not this mail's fault: every mail would be refused alike, so the run
            # stops with one line and the mails wait, pending, for the fix.
            raise SetupFailure("拒绝在未加密连接上发送密码（[mail] tls = \"none\" 且设置了 user）：请用 "
                               "tls = \"starttls\" 或 \"ssl\"；本机中继可设 allow_plain_auth = true")
        try:
            s = self._connect()
        except ssl.SSLError as e:
            raise PermanentFailure(f"TLS 证书校验失败：{e}") from None
        except (OSError, smtplib.SMTPException) as e:
            raise TemporaryFailure(f"无法连接邮件服务器 {self.host}:{self.port}：{e}") from None
        try:
            if self.user:
                try:
                    s.login(self.user, password)
                except smtplib.SMTPAuthenticationError as e:
                    raise AuthFailure(f"邮件服务器拒绝登录（{e.smtp_code}）：请检查用户名和环境变量 "
                                      f"{PASSWORD_ENV}") from None
                except smtplib.SMTPNotSupportedError:
                    # The server offers no AUTH (a relay that trusts this computer): logging in
                    # can never work, so stop with one line instead of failing each mail.
                    raise SetupFailure(f"邮件服务器 {self.host}:{self.port} 不支持登录（未提供 AUTH）："
                                       f"若它是免登录的中继，请删去 [mail] user；否则请检查端口和 tls 设置") from None
                except (smtplib.SMTPServerDisconnected, OSError) as e:
                    raise TemporaryFailure(f"登录时连接中断：{e}") from None
                except smtplib.SMTPException as e:
                    raise SetupFailure(f"登录邮件服务器 {self.host}:{self.port} 失败：{e}") from None
            try:
                payload = self._envelope(s, msg)
            except smtplib.SMTPResponseException as e:
                raise _refusal(e.smtp_code, repr(e.smtp_error)) from None
            except (OSError, smtplib.SMTPException) as e:
                # Before DATA the server cannot hold the mail: a retry is safe.
                raise TemporaryFailure(f"发送前连接中断：{e}") from None
            if before_data is not None:
                before_data()   # may raise ClaimLost: we quit without DATA, nothing delivered
            try:
                code, reply = s.data(payload)
            except smtplib.SMTPDataError as e:
                # DATA itself refused (no 354): the content was never sent.
                raise _refusal(e.smtp_code, repr(e.smtp_error)) from None
            except (OSError, smtplib.SMTPException) as e:
                raise UnknownOutcome(f"发送后未收到服务器回复：{e}") from None
            if code != 250:
                raise _refusal(code, repr(reply))
        finally:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()

    def _envelope(self, s: smtplib.SMTP, msg: EmailMessage) -> bytes:
        """MAIL FROM and RCPT TO, each checked: what ``sendmail`` does up to DATA."""
        s.ehlo_or_helo_if_needed()
        from_addr = getaddresses([str(msg["From"])])[0][1]
        to_addrs = [a for _n, a in getaddresses([str(v) for v in msg.get_all("To", [])]) if a]
        utf8 = not "".join([from_addr, *to_addrs]).isascii()
        if utf8 and not s.has_extn("smtputf8"):
            raise PermanentFailure(f"邮件服务器不支持非 ASCII 地址（SMTPUTF8）：{to_addrs}")
        payload = _flatten(msg, utf8)
        opts: list[str] = []
        if s.does_esmtp:
            if s.has_extn("size"):
                opts.append(f"size={len(payload)}")
            if utf8:
                opts += ["SMTPUTF8", "BODY=8BITMIME"]
        code, reply = s.mail(from_addr, opts)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, from_addr)
        refused = {}
        for addr in to_addrs:
            code, reply = s.rcpt(addr)
            if code not in (250, 251):
                refused[addr] = (code, reply)
        if refused:
            # One recipient per reminder: any refusal means nothing to send. Temporary only
            # when every refusal is a 4xx.
            codes = [c for c, _ in refused.values()]
            if all(400 <= c < 500 for c in codes):
                raise TemporaryFailure(f"收件人暂时被拒：{refused}")
            raise PermanentFailure(f"收件人被拒：{refused}")
        if not to_addrs:
            raise PermanentFailure("邮件没有收件人")
        return payload


@dataclass
class EmlFolderTransport:
    """No server configured: each mail becomes one .eml file named by its dedupe key."""

    folder: Path

    # Writing the same file twice gives the same file: a killed run can always be redone.
    idempotent = True
    claim_ttl = timedelta(seconds=30)

    def send(self, msg: EmailMessage, before_data: BeforeData | None = None) -> None:
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = str(msg["Message-ID"]).strip("<>").split("@")[0]
        target = self.folder / f"{name}.eml"
        if target.exists():
            return  # already written once: exactly once also for files
        # A per-process temp name: two runs redoing the same mail never write one temp file.
        tmp = target.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as f:
            f.write(msg.as_bytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
