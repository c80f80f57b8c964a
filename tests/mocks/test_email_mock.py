"""Tests for the SMTP mock: real SMTP over smtplib to start_smtp, inspected through its `/email/_mock` blueprint."""

from __future__ import annotations

import email
import email.policy
import hashlib
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mocks.email import MailStore, create_blueprint, start_smtp
from mocks.payment import receipt_pdf

from ..conftest import free_port

E = "/email"
SUBJECT = "Thông báo kết quả giải quyết hồ sơ HS-001 — Đồng Nai"
TEXT = "Kính gửi ông/bà Nguyễn Thị Hòa,\nHồ sơ của ông/bà đã có kết quả. Trân trọng!"
PDF_NAME = "Kết quả giải quyết thủ tục hành chính.pdf"
PDF = receipt_pdf(["KET QUA GIAI QUYET", "Ma ho so: HS-001"])


class Mail:
    """A running SMTP mock on a free port plus a Flask test client over its blueprint."""

    def __init__(self) -> None:
        self.store = MailStore()
        self.port = free_port()
        self.controller = start_smtp(self.store, port=self.port)
        app = Flask(__name__)
        app.json.ensure_ascii = False  # type: ignore[attr-defined]
        app.register_blueprint(create_blueprint(self.store), url_prefix=E)
        self.client: FlaskClient = app.test_client()

    def smtp(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.port, timeout=10)

    def send(self, msg: EmailMessage, to: list[str] | None = None) -> dict[str, Any]:
        with self.smtp() as smtp:
            return smtp.send_message(msg, to_addrs=to)

    def messages(self, **args: str) -> dict[str, Any]:
        return self.client.get(f"{E}/_mock/messages", query_string=args).json

    def arm(self, **fault: Any) -> None:
        assert self.client.post(f"{E}/_mock/faults", json={"count": 1} | fault).status_code == 200

    def log(self) -> list[dict[str, Any]]:
        return self.client.get(f"{E}/_mock/requests").json["requests"]


@pytest.fixture
def mail() -> Iterator[Mail]:
    m = Mail()
    yield m
    m.controller.stop()


def message(to: str = "nguoidan@example.vn", subject: str = SUBJECT, attach: bool = True) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = "Bộ phận Một cửa <motcua@dongnai.gov.vn>"
    msg["To"] = f"Nguyễn Thị Hòa <{to}>"
    msg["Message-ID"] = make_msgid(domain="dongnai.gov.vn")
    msg.set_content(TEXT, charset="utf-8")
    msg.add_alternative(f"<p>{TEXT}</p>", subtype="html", charset="utf-8")
    if attach:
        msg.add_attachment(PDF, maintype="application", subtype="pdf", filename=PDF_NAME)
    return msg


# --- receiving ----------------------------------------------------------------


def test_vietnamese_message_with_pdf_attachment_is_recorded_exactly(mail: Mail) -> None:
    msg = message()
    assert mail.send(msg) == {}
    listing = mail.messages()
    assert listing["total"] == 1
    [got] = listing["messages"]
    assert got["index"] == 0 and got["at"]
    assert got["subject"] == SUBJECT and got["text"] == TEXT + "\n"  # CRLF on the wire, "\n" in the str
    assert got["html"] == f"<p>{TEXT}</p>\n"
    assert got["from"] == "Bộ phận Một cửa <motcua@dongnai.gov.vn>"
    assert got["to"] == "Nguyễn Thị Hòa <nguoidan@example.vn>"
    assert got["mail_from"] == "motcua@dongnai.gov.vn" and got["rcpt_tos"] == ["nguoidan@example.vn"]
    assert got["message_id"] == msg["Message-ID"]
    assert got["attachments"] == [
        {"filename": PDF_NAME, "content_type": "application/pdf", "size": len(PDF),
         "sha256": hashlib.sha256(PDF).hexdigest()}
    ]  # fmt: skip
    raw = mail.client.get(f"{E}/_mock/messages/0/raw")
    assert raw.status_code == 200 and raw.mimetype == "message/rfc822"
    again = email.message_from_bytes(raw.data, policy=email.policy.default)
    assert again["Subject"] == SUBJECT and next(again.iter_attachments()).get_content() == PDF
    assert mail.client.get(f"{E}/_mock/messages/1/raw").status_code == 404
    [entry] = mail.log()
    assert entry["service"] == "DATA" and entry["fault"] is None and entry["reply"] == "250 OK"
    assert entry["body"] == {"mail_from": "motcua@dongnai.gov.vn", "rcpt_tos": ["nguoidan@example.vn"],
                             "subject": SUBJECT}  # fmt: skip


def test_plain_message_and_smtputf8_recipient(mail: Mail) -> None:
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "Chào", "a@example.vn", "người.dân@ví-dụ.vn"
    msg.set_content("Xin chào")
    mail.send(msg)  # smtplib sends SMTPUTF8 because the address is not ASCII and the server offers it
    [got] = mail.messages()["messages"]
    assert got["rcpt_tos"] == ["người.dân@ví-dụ.vn"] and got["text"] == "Xin chào\n"
    assert got["html"] is None and got["attachments"] == [] and got["message_id"] is None


def test_filter_by_recipient(mail: Mail) -> None:
    mail.send(message("a@example.vn", "Thư 1", attach=False))
    mail.send(message("b@example.vn", "Thư 2", attach=False), to=["b@example.vn", "c@example.vn"])
    assert [m["subject"] for m in mail.messages(to="B@Example.vn")["messages"]] == ["Thư 2"]
    assert mail.messages(to="c@example.vn")["total"] == 1
    assert mail.messages(to="nobody@example.vn") == {"total": 0, "messages": []}
    assert mail.messages()["total"] == 2


def test_bad_recipient_address_is_refused_with_550(mail: Mail) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
        mail.send(message(), to=["khong-co-a-cong"])
    assert caught.value.recipients["khong-co-a-cong"][0] == 550
    assert b"5.1.3" in caught.value.recipients["khong-co-a-cong"][1]
    # One bad recipient among good ones: the message still goes to the good one.
    refused = mail.send(message(), to=["khong-co-a-cong", "ok@example.vn"])
    assert refused["khong-co-a-cong"][0] == 550
    assert mail.messages()["messages"][0]["rcpt_tos"] == ["ok@example.vn"]


# --- faults -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"mode": "http_500"}, 451),
        ({"mode": "timeout", "seconds": 0.05}, 451),
        ({"mode": "error_code", "code": "550 5.7.1 Blocked by policy"}, 550),
        ({"mode": "error_code", "code": "BUSY"}, 554),
        ({"mode": "error_code"}, 554),
    ],
)
def test_data_faults_refuse_the_message(mail: Mail, fault: dict, code: int) -> None:
    mail.arm(services=["DATA"], **fault)
    with pytest.raises(smtplib.SMTPDataError) as caught:
        mail.send(message())
    assert caught.value.smtp_code == code
    if "code" in fault and code == 550:
        assert caught.value.smtp_error == b"5.7.1 Blocked by policy"
    assert mail.messages()["total"] == 0
    [entry] = mail.log()
    assert entry["fault"] == fault["mode"] and entry["body"]["subject"] == SUBJECT
    mail.send(message())  # one count: the next message goes through
    assert mail.messages()["total"] == 1


def test_drop_answers_421_and_closes_the_connection(mail: Mail) -> None:
    mail.arm(mode="drop")
    with mail.smtp() as smtp:
        smtp.ehlo()
        smtp.mail("motcua@dongnai.gov.vn")
        smtp.rcpt("nguoidan@example.vn")
        code, _ = smtp.data(message().as_bytes(policy=email.policy.SMTP))  # CRLF lines
        assert code == 421
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.noop()
    assert mail.messages()["total"] == 0 and mail.log()[0]["reply"].startswith("421 ")
    mail.arm(mode="drop")
    with pytest.raises((smtplib.SMTPServerDisconnected, smtplib.SMTPDataError)) as caught:
        mail.send(message())
    if isinstance(caught.value, smtplib.SMTPDataError):
        assert caught.value.smtp_code == 421


def test_client_giving_up_during_a_timeout_is_still_logged(mail: Mail) -> None:
    mail.arm(mode="timeout", seconds=5)
    with pytest.raises(smtplib.SMTPServerDisconnected), smtplib.SMTP("127.0.0.1", mail.port, timeout=0.3) as smtp:
        smtp.send_message(message())  # the client's own timeout fires first
    deadline = time.monotonic() + 5
    while not mail.log() and time.monotonic() < deadline:  # the server notices the hang-up asynchronously
        time.sleep(0.02)
    [entry] = mail.log()
    assert entry["fault"] == "timeout" and entry["reply"].startswith("(connection closed")
    mail.send(message())  # the server is not stuck in the abandoned sleep
    assert mail.messages()["total"] == 1


def test_delay_waits_then_accepts(mail: Mail) -> None:
    mail.arm(mode="delay", seconds=0.2)
    started = time.monotonic()
    mail.send(message())
    assert time.monotonic() - started >= 0.2 and mail.messages()["total"] == 1


# --- reset --------------------------------------------------------------------


def test_reset_clears_messages_log_and_faults(mail: Mail) -> None:
    mail.send(message())
    mail.arm(mode="http_500", count=3)
    assert mail.client.post(f"{E}/_mock/reset").json == {"status": "reset"}
    assert mail.messages() == {"total": 0, "messages": []}
    assert mail.client.get(f"{E}/_mock/requests").json == {"total": 0, "requests": []}
    assert mail.client.get(f"{E}/_mock/faults").json == {"faults": []}
    assert mail.client.get(f"{E}/_mock/messages/0/raw").status_code == 404
    mail.send(message())  # the fault is gone: accepted, and indexed from 0 again
    assert mail.messages()["messages"][0]["index"] == 0
