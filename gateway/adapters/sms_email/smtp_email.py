"""Email over plain SMTP (STARTTLS and login when configured), UTF-8 throughout, results attached."""

from __future__ import annotations

import contextlib
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, parseaddr

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from gateway.adapters.base import PermanentError, RetryableError
from gateway.config import EmailSettings

from .base import RejectedError
from .email_wire import envelope_sender, plain_text, sender_header


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Email:
    reference: str  # stable: the Message-ID, so a retried send is recognisable as the same message
    to: str
    subject: str
    text: str
    attachments: list[Attachment] = field(default_factory=list)


def build_message(email: Email, sender: str) -> Message:
    """The message as sent: UTF-8 body, RFC 2047 headers, RFC 2231 attachment names (Vietnamese throughout).

    Built with the email package's compat32 classes rather than EmailMessage and its default policy: the
    same headers and body on the wire for about an eighth of the CPU (the default policy parses and refolds
    every header as it writes it; docs/performance.md has the figures).
    """
    text = MIMEText(email.text, "plain", "utf-8")
    if email.attachments:
        message: Message = MIMEMultipart("mixed")
        message.attach(text)
        for item in email.attachments:
            maintype, _, subtype = item.content_type.partition("/")
            part = MIMEBase(maintype, subtype or "octet-stream")
            part.set_payload(item.content)
            encoders.encode_base64(part)
            part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", item.filename))
            message.attach(part)
    else:
        message = text
    name, address = parseaddr(sender)
    message["From"] = formataddr((name, address), charset="utf-8")
    message["To"] = email.to
    message["Subject"] = Header(email.subject, "utf-8")
    # The same for every attempt: a send repeated after a crash (SMTP has no idempotency) is the same message,
    # which mail systems show once.
    message["Message-ID"] = f"<{email.reference}@{_domain(sender)}>"
    return message


def _domain(sender: str) -> str:
    _, address = parseaddr(sender)
    return address.rpartition("@")[2] or "gateway.local"


class _StaleConnection(Exception):
    """A kept connection the server had closed meanwhile (idle timeout, restart): open a new one and resend."""


class SmtpEmail:
    """Keeps one SMTP connection per worker thread across messages (a new TCP + STARTTLS + login per email
    cost more than the message); a connection found closed is reopened once, by tenacity."""

    name = "smtp"

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        self._from_line = sender_header(settings.sender)
        self._envelope_from = envelope_sender(settings.sender)
        self._domain = _domain(settings.sender)
        self._local = threading.local()
        self._resend_on_stale = Retrying(stop=stop_after_attempt(2), retry=retry_if_exception_type(_StaleConnection),
                                         reraise=True)

    def send(self, email: Email) -> str:
        message_id = f"<{email.reference}@{self._domain}>"
        # A plain message is written directly (email_wire: the same bytes for a tenth of the CPU); the rest, and
        # anything off that shape, goes through the email package.
        wire = None if email.attachments else plain_text(self._from_line, email.to, email.subject, email.text,
                                                         message_id)
        if wire is not None:
            def deliver(smtp: smtplib.SMTP) -> object:
                return smtp.sendmail(self._envelope_from, [email.to], wire)
        else:
            message = build_message(email, self.settings.sender)

            def deliver(smtp: smtplib.SMTP) -> object:
                return smtp.send_message(message)
        try:
            self._resend_on_stale(self._send_once, deliver)
        except _StaleConnection as exc:  # reopened and closed again at once: the server is in trouble
            raise RetryableError(f"smtp: connection closed: {exc.__cause__}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                raise RejectedError(f"smtp: recipient refused: {exc.recipients}") from exc
            raise RetryableError(f"smtp: recipient deferred: {exc.recipients}") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"smtp: login refused: {exc.smtp_code} {exc.smtp_error!r}") from exc
        except smtplib.SMTPResponseException as exc:  # 4xx: try again later; 5xx: this message will not go
            kind = RetryableError if exc.smtp_code < 500 else RejectedError
            said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            raise kind(f"smtp: {exc.smtp_code} {said}") from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:  # disconnects, refused connections
            raise RetryableError(f"smtp: {type(exc).__name__}: {exc}") from exc
        return message_id

    def _send_once(self, deliver: Callable[[smtplib.SMTP], object]) -> None:
        smtp, reused = self._connection()
        try:
            deliver(smtp)
        except smtplib.SMTPRecipientsRefused:
            raise  # smtplib has reset the transaction: the connection serves the next message
        except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            self._drop()
            if reused:
                raise _StaleConnection(str(exc)) from exc
            raise
        except BaseException:
            self._drop()  # after a failure mid-transaction the session's state is unknown: start afresh
            raise

    def _connection(self) -> tuple[smtplib.SMTP, bool]:
        smtp = getattr(self._local, "smtp", None)
        if smtp is not None:
            return smtp, True
        s = self.settings
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
        try:
            if s.starttls:
                smtp.starttls()
            if s.username:
                smtp.login(s.username, s.password)
        except BaseException:
            smtp.close()
            raise
        self._local.smtp = smtp
        return smtp, False

    def _drop(self) -> None:
        smtp = getattr(self._local, "smtp", None)
        self._local.smtp = None
        if smtp is not None:
            with contextlib.suppress(OSError):
                smtp.close()
