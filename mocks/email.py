"""Fake SMTP server (aiosmtpd) recording every message, with faults and a `_mock/*` blueprint to inspect them."""

from __future__ import annotations

import asyncio
import copy
import email
import email.policy
import functools
import hashlib
import re
import threading
from datetime import UTC, datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from flask import Blueprint, Response, jsonify, request

from mocks.harness import FaultInjector, RequestLog, add_mock_endpoints

DATA_SERVICE = "DATA"
REPLY_OK = "250 OK"
REPLY_BAD_RCPT = "550 5.1.3 Bad recipient address syntax"
REPLY_HTTP_500 = "451 4.3.0 Temporary failure (injected)"
REPLY_TIMEOUT = "451 4.4.2 Timeout (injected)"
REPLY_REJECTED = "554 5.7.1 Message rejected (injected)"
REPLY_DROP = "421 4.3.2 Service not available, closing transmission channel"
REPLY_CLIENT_GONE = "(connection closed by the client before the reply)"  # logged only, never sent
# An error_code fault's code is answered as is only if it is a whole 4xx/5xx reply on one line.
SMTP_ERROR_REPLY = re.compile(r"[45][0-9]{2} [^\r\n]+")


class MailStore:
    """Thread-safe store of the messages received, with the SMTP server's request log and faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.log = RequestLog()
        self.faults = FaultInjector()
        self._messages: list[dict[str, Any]] = []
        self._raw: list[bytes] = []
        self._first: dict[str, int] = {}  # Message-ID -> index of its first arrival

    def add(self, summary: dict[str, Any], raw: bytes) -> int:
        """Store a parsed message and its raw bytes, stamping `index` and `at`; returns the index."""
        with self._lock:
            stamped = {"index": len(self._messages), "at": datetime.now(UTC).isoformat(timespec="milliseconds")}
            # A mailbox shows a message once per Message-ID; a repeat is marked with the first one's index.
            message_id = summary.get("message_id")
            if message_id and message_id in self._first:
                stamped["repeat_of"] = self._first[message_id]
            elif message_id:
                self._first[message_id] = stamped["index"]
            self._messages.append(stamped | summary)
            self._raw.append(raw)
            return stamped["index"]

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Messages oldest first; with `to`, only those whose envelope recipients include it (case-insensitive)."""
        with self._lock:
            found = self._messages
            if to is not None:
                wanted = to.strip().lower()
                found = [m for m in found if wanted in (r.lower() for r in m["rcpt_tos"])]
            return copy.deepcopy(found)

    def raw(self, index: int) -> bytes | None:
        with self._lock:
            return self._raw[index] if 0 <= index < len(self._raw) else None

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._raw.clear()
            self._first.clear()
        self.log.clear()
        self.faults.clear()


STORE = MailStore()  # the store the mocks server wires to its SMTP server and blueprint


class _HeadersParsedOnce(HeaderRegistry):
    """policy.default's headers, each parsed once. The policy parses a header again at every read, and reading a
    message (the parser itself, get_body, iter_attachments, get_content) reads Content-Type a dozen times: that
    was ~80 % of the SMTP mock's CPU. A parse depends only on the name and the value and gives an immutable
    header, so one serves every read, and every message carrying the same header (Content-Type, From). The
    registry also made a new header class (under ABCMeta) for every parse; one per header name does."""

    def __init__(self) -> None:
        super().__init__()
        self._parsed = functools.lru_cache(maxsize=1024)(super().__call__)
        self._classes = functools.lru_cache(maxsize=256)(super().__getitem__)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        return self._classes(name.lower())

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if not isinstance(value, str):  # a header being set from objects (a list of Address): not a parse
            return super().__call__(name, value)
        return self._parsed(name, value)


# policy.default in every respect (RFC 2047 and 2231 decoding, EmailMessage and its content manager).
_POLICY = email.policy.default.clone(header_factory=_HeadersParsedOnce())


def _text_of(part: EmailMessage | None) -> str | None:
    if part is None:
        return None
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):  # unknown or lying charset: keep what can be read
        text = (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
    # Lines travel as CRLF in SMTP (and stay so in 8bit/QP parts); a Python str reads better with "\n".
    return text.replace("\r\n", "\n")


def _header(msg: EmailMessage, name: str) -> str | None:
    value = msg.get(name)
    return None if value is None else str(value)  # policy.default decodes RFC 2047 words


def summarize(raw: bytes) -> dict[str, Any]:
    """The decoded parts of a message a tester checks: headers, text and HTML bodies, attachments."""
    msg = email.message_from_bytes(raw, policy=_POLICY)
    assert isinstance(msg, EmailMessage)  # policy.default (and so _POLICY) always builds EmailMessage
    attachments = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True) or b""
        attachments.append(
            {
                "filename": part.get_filename(),  # decoded (RFC 2231 / RFC 2047)
                "content_type": part.get_content_type(),
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
        )
    return {
        "subject": _header(msg, "Subject"),
        "from": _header(msg, "From"),
        "to": _header(msg, "To"),
        "message_id": _header(msg, "Message-ID"),
        "text": _text_of(msg.get_body(preferencelist=("plain",))) or "",
        "html": _text_of(msg.get_body(preferencelist=("html",))),
        "attachments": attachments,
    }


def _subject(raw: bytes) -> str | None:
    try:
        return _header(email.message_from_bytes(raw, policy=_POLICY), "Subject")
    except Exception:  # noqa: BLE001 - the log must not fail on a broken message
        return None


class RecordingHandler:
    """aiosmtpd handler: checks recipients, applies DATA faults, records accepted messages in a MailStore."""

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_RCPT(  # aiosmtpd hook names
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if "@" not in address or any(c.isspace() for c in address):
            return REPLY_BAD_RCPT
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return REPLY_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):  # only with decode_data=True, which start_smtp does not set
            raw = raw.encode("utf-8", errors="surrogateescape")
        fault = self.store.faults.take(DATA_SERVICE)
        mode = fault.mode if fault else None
        reply = REPLY_CLIENT_GONE  # what the log says if the client hangs up during a timeout/delay sleep
        summary: dict[str, Any] | None = None
        try:
            if fault is not None and fault.mode in ("timeout", "delay"):
                # asyncio.sleep: other connections keep being served; a client hanging up cancels it.
                await asyncio.sleep(fault.seconds)
            if mode == "http_500":
                reply = REPLY_HTTP_500
            elif mode == "timeout":
                reply = REPLY_TIMEOUT
            elif mode == "error_code":
                code = fault.code if fault else None
                reply = code if code and SMTP_ERROR_REPLY.fullmatch(code) else REPLY_REJECTED
            elif mode == "drop":
                reply = REPLY_DROP
                # Close once the 421 is written (the server writes it right after we return, with no await between).
                if server.transport is not None:
                    asyncio.get_running_loop().call_soon(server.transport.close)
            else:
                reply, summary = self._record(envelope, raw)
            return reply
        finally:  # every DATA is logged, also refused or abandoned ones; a stored message is parsed once
            subject = summary["subject"] if summary is not None else _subject(raw)
            body = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos), "subject": subject}
            self.store.log.append({"service": DATA_SERVICE, "body": body, "reply": reply, "fault": mode})

    def _record(self, envelope: Envelope, raw: bytes) -> tuple[str, dict[str, Any] | None]:
        try:
            summary = summarize(raw)
        except Exception:  # noqa: BLE001 - a message we cannot parse is refused, not a crashed session
            return "554 5.6.0 Message could not be parsed", None
        self.store.add({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos)} | summary, raw)
        return REPLY_OK, summary


def start_smtp(store: MailStore, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    """Start the SMTP mock in its own thread (SMTPUTF8 and 8BITMIME, no auth, no TLS); the caller stops it."""
    controller = Controller(RecordingHandler(store), hostname=host, port=port, enable_SMTPUTF8=True)
    controller.start()
    return controller


def create_blueprint(store: MailStore | None = None) -> Blueprint:
    """The `_mock/*` endpoints over a MailStore (default: STORE) as a blueprint; mount it at /email."""
    mail = store if store is not None else STORE
    bp = Blueprint("email", __name__)
    add_mock_endpoints(bp, mail.log, mail.faults, mail.reset)

    @bp.get("/_mock/messages")
    def mock_messages() -> Response:
        found = mail.messages(request.args.get("to"))
        return jsonify({"total": len(found), "messages": found})

    @bp.get("/_mock/messages/<int:index>/raw")
    def mock_message_raw(index: int) -> Response | tuple[Response, int]:
        raw = mail.raw(index)
        if raw is None:
            return jsonify({"error": "not_found", "message": "Không tìm thấy thư"}), 404
        return Response(raw, mimetype="message/rfc822")

    return bp
