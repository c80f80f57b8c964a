"""A plain email written directly (email_wire) is, byte for byte, what the email package and smtplib would send.

The email package is the referee: build_message, flattened as smtplib.SMTP.send_message flattens it. Generated
Vietnamese and ASCII subjects of every length cross the points where compat32 cuts an RFC 2047 word, in base64
and in quoted-printable (the package picks the shorter)."""

from __future__ import annotations

import smtplib
from email.generator import BytesGenerator
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.adapters.sms_email import email_wire
from gateway.adapters.sms_email.smtp_email import Attachment, Email, SmtpEmail, build_message
from gateway.config import EmailSettings

VIETNAMESE = "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵĐƯ"
ASCII = "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 -_.,:;()/!?=\"'*+@"
SENDERS = ["Bộ phận Một cửa <motcua@example.gov.vn>", "motcua@example.gov.vn",
           "Trung tâm Phục vụ hành chính công tỉnh Thừa Thiên Huế <dichvucong@thuathienhue.gov.vn>"]
text_of = st.text(alphabet=VIETNAMESE + ASCII + "\n", max_size=600)
subjects = st.one_of(st.text(alphabet=VIETNAMESE + ASCII, min_size=1, max_size=240),
                     st.text(alphabet=ASCII + "é", min_size=1, max_size=240))  # mostly ASCII: quoted-printable
recipients = st.from_regex(r"[a-z0-9_+\-]{1,20}(\.[a-z0-9_+\-]{1,10}){0,2}@[a-z0-9]{1,20}(\.[a-z0-9]{1,12})?"
                           r"\.(vn|gov\.vn|com)", fullmatch=True)


def as_smtplib_flattens(email: Email, sender: str) -> bytes:
    out = BytesIO()
    BytesGenerator(out).flatten(build_message(email, sender), linesep="\r\n")  # smtplib.SMTP.send_message's way
    return out.getvalue()


def wire(email: Email, sender: str) -> bytes | None:
    return email_wire.plain_text(email_wire.sender_header(sender), email.to, email.subject, email.text,
                                 f"<{email.reference}@{email_wire.envelope_sender(sender).rpartition('@')[2]}>")


@settings(max_examples=400, deadline=None)
@given(subject=subjects, text=text_of, to=recipients, sender=st.sampled_from(SENDERS),
       reference=st.from_regex(r"TB[0-9A-F]{16}", fullmatch=True))
def test_a_plain_email_is_the_bytes_the_email_package_writes(subject, text, to, sender, reference):
    email = Email(reference, to, subject, text)
    written = wire(email, sender)
    assert written is not None  # a citizen's plain message is always on the fast path
    assert written == as_smtplib_flattens(email, sender)


@pytest.mark.parametrize("subject", ["Hồ sơ", "Hồ sơ H12.34-241206-0001 đã có kết quả giải quyết, mời ông/bà "
                                     "đến nhận tại Bộ phận Một cửa hoặc qua bưu chính công ích", "Ho so da tiep nhan",
                                     "x" * 200, "Đ" * 90])
def test_subjects_cut_into_several_words_are_cut_where_the_package_cuts_them(subject):
    email = Email("TB0000000000000001", "an@example.vn", subject, "Nội dung")
    written = wire(email, SENDERS[0])
    assert written == as_smtplib_flattens(email, SENDERS[0])
    assert written.count(b"=?utf-8?") >= (2 if len(subject.encode()) > 60 else 1)


@pytest.mark.parametrize(("to", "subject"), [
    ("Nguyễn Văn An <an@example.vn>", "Hồ sơ"),  # a display name: smtplib must parse it
    ("an@example.vn, binh@example.vn", "Hồ sơ"),  # a list
    ("ẩn@example.vn", "Hồ sơ"),  # not ASCII: SMTPUTF8 territory
    ("an..binh@example.vn", "Hồ sơ"),  # not a dot-atom: left to smtplib's own parsing
    ("a" * 80 + "@example.vn", "Hồ sơ"),  # a To line compat32 would fold
    ("an@example.vn", "Dòng một\nDòng hai"),  # a subject on several lines
    ("an@example.vn", ""),
])
def test_what_is_off_the_plain_shape_is_left_to_the_email_package(to, subject):
    assert wire(Email("TB0000000000000001", to, subject, "Nội dung"), SENDERS[0]) is None


def test_the_server_receives_what_the_email_package_path_sent(smtp_server):
    """The same messages through the adapter (fast path, and the package for attachments and named recipients) and
    through smtplib.send_message of build_message: the server's raw bytes are identical."""
    store, port = smtp_server
    sender = "Bộ phận Một cửa <motcua@example.gov.vn>"
    adapter = SmtpEmail(EmailSettings(host="127.0.0.1", port=port, timeout_seconds=5, sender=sender))
    emails = [
        Email("TB0000000000000001", "an@example.vn", "Hồ sơ H12.34-241206-0001 đã có kết quả giải quyết",
              "Kính gửi ông/bà,\nHồ sơ của ông/bà đã có kết quả.\n"),
        Email("TB0000000000000002", "Nguyễn Văn An <an@example.vn>", "Hồ sơ đã được tiếp nhận", "Nội dung"),
        Email("TB0000000000000003", "an@example.vn", "Kết quả", "Xem tệp đính kèm",
              [Attachment("Giấy chứng nhận.pdf", "application/pdf", b"%PDF-1.7\n" + bytes(range(256)))]),
    ]
    for email in emails:
        assert adapter.send(email) == f"<{email.reference}@example.gov.vn>"
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        for email in emails:
            message = build_message(email, sender)
            if email.attachments:  # the boundary is random: use the one the adapter's message had
                message.set_boundary(_boundary(store.raw(emails.index(email))))
            smtp.send_message(message)
    assert len(store.messages()) == 2 * len(emails)
    for n in range(len(emails)):
        assert store.raw(n) == store.raw(n + len(emails))
    assert [m["subject"] for m in store.messages()[:3]] == [e.subject for e in emails]
    assert [m["rcpt_tos"] for m in store.messages()[:3]] == [["an@example.vn"]] * 3


def _boundary(raw: bytes) -> str:
    start = raw.index(b'boundary="') + len(b'boundary="')
    return raw[start:raw.index(b'"', start)].decode()
