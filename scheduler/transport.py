"""Mail transports: SMTP (TLS verified, timeouts) and an .eml outbox folder."""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path


class TemporaryFailure(Exception):
    """4xx or connection trouble before DATA finished: retry later with backoff."""


class PermanentFailure(Exception):
    """5xx: never retried."""


class AuthFailure(PermanentFailure):
    """Wrong user or password (535): stop this run, one clear message."""


class UnknownOutcome(Exception):
    """The reply after DATA was lost: the server may have the mail, so it is not resent."""


PASSWORD_ENV = "COMPLAINT_DESK_SMTP_PASSWORD"


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

    def _connect(self) -> smtplib.SMTP:
        ctx = self.context or ssl.create_default_context()
        if self.tls == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ctx)
        s = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.tls == "starttls":
            s.starttls(context=ctx)
        return s

    def send(self, msg: EmailMessage) -> None:
        password = os.environ.get(PASSWORD_ENV, "")
        try:
            s = self._connect()
        except ssl.SSLError as e:
            raise PermanentFailure(f"TLS 证书校验失败：{e}") from None
        except (OSError, smtplib.SMTPException) as e:
            raise TemporaryFailure(f"无法连接邮件服务器 {self.host}:{self.port}：{e}") from None
        try:
            if self.user:
                if self.tls == "none" and not self.allow_plain_auth:
                    raise PermanentFailure("拒绝在未加密连接上发送密码（tls = \"none\"）")
                try:
                    s.login(self.user, password)
                except smtplib.SMTPAuthenticationError as e:
                    raise AuthFailure(f"邮件服务器拒绝登录（{e.smtp_code}）：请检查用户名和环境变量 "
                                      f"{PASSWORD_ENV}") from None
            try:
                refused = s.send_message(msg)
            except smtplib.SMTPServerDisconnected as e:
                # The DATA may have been accepted before the link dropped: outcome unknown.
                raise UnknownOutcome(f"发送后未收到服务器回复：{e}") from None
            except smtplib.SMTPResponseException as e:
                if 400 <= e.smtp_code < 500:
                    raise TemporaryFailure(f"{e.smtp_code} {e.smtp_error!r}") from None
                raise PermanentFailure(f"{e.smtp_code} {e.smtp_error!r}") from None
            except smtplib.SMTPRecipientsRefused as e:
                codes = [c for c, _ in e.recipients.values()]
                if all(400 <= c < 500 for c in codes):
                    raise TemporaryFailure(str(e.recipients)) from None
                raise PermanentFailure(str(e.recipients)) from None
            except OSError as e:
                raise UnknownOutcome(f"发送中连接中断：{e}") from None
            if refused:
                raise PermanentFailure(f"收件人被拒：{refused}")
        finally:
            try:
                s.quit()
            except (smtplib.SMTPException, OSError):
                s.close()


@dataclass
class EmlFolderTransport:
    """No server configured: each mail becomes one .eml file named by its dedupe key."""

    folder: Path

    def send(self, msg: EmailMessage) -> None:
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = str(msg["Message-ID"]).strip("<>").split("@")[0]
        target = self.folder / f"{name}.eml"
        if target.exists():
            return  # already written once: exactly once also for files
        tmp = target.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(msg.as_bytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
