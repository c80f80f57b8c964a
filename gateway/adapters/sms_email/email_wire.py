"""A plain-text email's bytes written directly, as the email package writes them; the package stays the referee.

Sending through `smtplib.SMTP.send_message` builds a Message, parses its From and To again, and flattens it with
compat32's folding, whose RFC 2047 encoder tries every prefix of a header to find where to cut it (quadratic in the
header's length). Together that was about a fifth of the worker's CPU in the mixed bench (docs/performance.md).
A citizen's message without attachments always has the same shape: four fixed headers, the sender (the same for
every message), the recipient, a subject in UTF-8, a Message-ID, and the text in base64. So this module writes
those bytes itself, cutting the subject's encoded words where the email package cuts them, and answers None for
anything off that shape (attachments, a recipient that is more than a plain address, a line that compat32 would
fold); the caller then builds the message with the email package. tests/test_email_wire.py compares the bytes
with the email package's for generated subjects, texts and addresses, byte for byte.
"""

from __future__ import annotations

import re
from base64 import b64encode, encodebytes
from email import base64mime, quoprimime
from email.policy import compat32
from email.utils import formataddr, parseaddr

LINESEP = b"\r\n"
MAX_LINE = 78  # compat32's max_line_length: where the generator folds a header
CHARSET = "utf-8"
CHROME = len(CHARSET) + 7  # '=?utf-8?b?' + '?=': RFC 2047's chrome around an encoded word (email.charset)
# What MIMEText(text, "plain", "utf-8") puts before From, in this order.
FIXED_HEADERS = (b'Content-Type: text/plain; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
                 b"Content-Transfer-Encoding: base64\r\n")
# A bare RFC 5321 address (dot-atom local part, dotted host name), ASCII: what smtplib's address parsing gives back
# unchanged as the envelope recipient, and the generator writes as it is. Names, lists and the rest: the package.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_LABEL}(?:\.{_LABEL})+")


def sender_header(sender: str) -> bytes:
    """The From line for `sender`, written by the email package itself: it is the same for every message."""
    name, address = parseaddr(sender)
    return compat32.fold_binary("From", formataddr((name, address), charset=CHARSET)).replace(b"\n", LINESEP)


def envelope_sender(sender: str) -> str:
    return parseaddr(sender)[1]


def plain_text(sender_line: bytes, to: str, subject: str, text: str, message_id: str) -> bytes | None:
    """The message MIMEText(text, "plain", "utf-8") with these headers flattens to, CRLF ends; None when off shape."""
    if not _PLAIN_ADDRESS.fullmatch(to):
        return None
    to_line = f"To: {to}"
    id_line = f"Message-ID: {message_id}"
    if len(to_line) > MAX_LINE or len(id_line) > MAX_LINE or not message_id.isascii():
        return None
    subject_value = _encoded_subject(subject)
    if subject_value is None:
        return None
    try:
        body = encodebytes(text.encode(CHARSET))
    except UnicodeEncodeError:  # a lone surrogate: the email package fails on it too, let it say so
        return None
    return b"".join((FIXED_HEADERS, sender_line, to_line.encode(), LINESEP, b"Subject: ", subject_value, LINESEP,
                     id_line.encode(), LINESEP, LINESEP, body.replace(b"\n", LINESEP)))


def _encoded_subject(subject: str) -> bytes | None:
    """Header(subject, "utf-8") as compat32 writes it: encoded words cut where email.charset cuts them.

    email.charset.Charset.header_encode_lines adds one character at a time and encodes the whole line so far to
    measure it; the lengths it measures only grow, by a known amount per character, so one pass gives the same
    cuts. Its header has no name (build_message's Header has none), so the first line may be MAX_LINE long.
    """
    if not subject or len(subject.splitlines()) != 1:
        return None  # an empty subject, or one the package would write over several lines: leave it to the package
    try:
        data = subject.encode(CHARSET)
    except UnicodeEncodeError:
        return None
    use_base64 = base64mime.header_length(data) < quoprimime.header_length(data)
    limit = MAX_LINE - CHROME  # then MAX_LINE - 1 - CHROME: continuation lines start with one space
    words: list[bytes] = []
    current = bytearray()
    qp_length = piece_qp = 0
    for character in subject:
        piece = character.encode(CHARSET)
        if use_base64:  # base64's length follows from the byte count
            length = -(-(len(current) + len(piece)) // 3) * 4
        else:  # quoted-printable's adds up, character by character
            piece_qp = quoprimime.header_length(piece)
            length = qp_length + piece_qp
        if length > limit:
            if not current:
                return None  # nothing fits the first line: a case the package writes differently; leave it to it
            words.append(bytes(current))
            current, qp_length = bytearray(), 0  # the character starts the next word, unmeasured (as the package)
            limit = MAX_LINE - 1 - CHROME
        current += piece
        qp_length += piece_qp
    words.append(bytes(current))
    encoded = [_word(w, use_base64) for w in words]
    return (LINESEP + b" ").join(encoded)


def _word(data: bytes, use_base64: bool) -> bytes:
    if use_base64:
        return b"=?utf-8?b?" + b64encode(data) + b"?="
    return quoprimime.header_encode(data, CHARSET).encode("ascii")

