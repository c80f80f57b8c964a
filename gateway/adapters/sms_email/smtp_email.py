"""Email over plain SMTP (STARTTLS and login when configured), UTF-8 throughout, results attached."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr

from gateway.adapters.base import PermanentError, RetryableError
from gateway.config import EmailSettings

from .base import RejectedError


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


def build_message(email: Email, sender: str) -> EmailMessage:
    message = EmailMessage()  # the default policy: RFC 2047 headers and UTF-8 bodies for Vietnamese
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    # The same for every attempt: a send repeated after a crash (SMTP has no idempotency) is the same message,
    # which mail systems show once.
    message["Message-ID"] = f"<{email.reference}@{_domain(sender)}>"
    message.set_content(email.text, charset="utf-8")
    for item in email.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        message.add_attachment(item.content, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=item.filename)
    return message


def _domain(sender: str) -> str:
    _, address = parseaddr(sender)
    return address.rpartition("@")[2] or "gateway.local"


class SmtpEmail:
    name = "smtp"

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    def send(self, email: Email) -> str:
        s = self.settings
        message = build_message(email, s.sender)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds) as smtp:
                if s.starttls:
                    smtp.starttls()
                if s.username:
                    smtp.login(s.username, s.password)
                smtp.send_message(message)
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
        return message["Message-ID"]
