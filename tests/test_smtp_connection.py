"""The SMTP adapter keeps one connection per worker thread, and opens a new one when the server closed it."""

from __future__ import annotations

import smtplib

import pytest

from gateway.adapters.base import RetryableError
from gateway.adapters.sms_email.smtp_email import Email, SmtpEmail
from gateway.config import EmailSettings
from mocks.email import MailStore, start_smtp

from .conftest import free_port


class Opened:
    """Counts the real connections the adapter opens (a spy over smtplib.SMTP, not a stand-in)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = smtplib.SMTP

        def counting(*args: object, **kwargs: object) -> smtplib.SMTP:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(smtplib, "SMTP", counting)


def email(n: int) -> Email:
    return Email(f"TB{n:016d}", "an@example.vn", f"Hồ sơ số {n}", "Hồ sơ của ông/bà đã được tiếp nhận.")


def adapter(port: int) -> SmtpEmail:
    return SmtpEmail(EmailSettings(host="127.0.0.1", port=port, timeout_seconds=5))


def test_messages_share_one_connection(smtp_server, monkeypatch):
    store, port = smtp_server
    opened = Opened(monkeypatch)
    smtp = adapter(port)
    for n in range(3):
        smtp.send(email(n))
    assert [m["subject"] for m in store.messages()] == ["Hồ sơ số 0", "Hồ sơ số 1", "Hồ sơ số 2"]
    assert opened.count == 1


def test_a_connection_the_server_closed_is_reopened_and_the_message_sent_once(monkeypatch):
    store, port = MailStore(), free_port()
    controller = start_smtp(store, port=port)
    opened = Opened(monkeypatch)
    smtp = adapter(port)
    smtp.send(email(1))
    controller.stop()  # a restart of the mail server: the kept connection is dead
    controller = start_smtp(store, port=port)
    try:
        smtp.send(email(2))
    finally:
        controller.stop()
    assert [m["subject"] for m in store.messages()] == ["Hồ sơ số 1", "Hồ sơ số 2"]
    assert opened.count == 2


def test_no_server_is_a_retryable_failure(monkeypatch):
    opened = Opened(monkeypatch)
    with pytest.raises(RetryableError, match="smtp"):
        adapter(free_port()).send(email(1))
    assert opened.count == 1  # a fresh connection that fails is not tried again here: the worker's backoff does
