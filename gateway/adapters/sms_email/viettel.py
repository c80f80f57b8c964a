"""Viettel brandname SMS: SOAP (wsCpMt). zeep reads the provider's WSDL once and builds the envelope's form;
each message fills that form and goes out with requests (viettel_envelope.py says why)."""

from __future__ import annotations

import hashlib
import threading

import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport

from gateway.adapters.base import PerThreadHttp, RetryableError
from gateway.config import ViettelSmsSettings

from .base import Sms, SmsProvider, Verdict, raise_for
from .viettel_envelope import EnvelopeForm

# wsCpMt answers result 1 (sent) or 0 with a message whose prefix says why: the messages are those of the
# table in tests/conformance/viettel_sms/result_messages.json (published client code). First match wins.
# Unknown: retryable (then a dead letter an operator sees, if it persists).
MESSAGE_VERDICTS: tuple[tuple[str, Verdict], ...] = (
    ("Insert MT_QUEUE: OK", Verdict.SENT),
    ("Check ServiceID: DUPLICATE MESSAGE", Verdict.DUPLICATE),  # the same message was taken already
    ("Check ReceiverID", Verdict.REJECTED),  # blank or malformed number
    ("Unable to check telco from input receiver", Verdict.REJECTED),
    ("Length of ReceiverID is invalid", Verdict.REJECTED),
    ("Check Content", Verdict.REJECTED),  # blank, too long, or a blacklisted word: no provider would send it
    ("Check information error", Verdict.RETRYABLE),  # the general system error
    ("Authenticate", Verdict.REFUSING),  # account, CP code, whitelisted IP
    ("Check ServiceID", Verdict.REFUSING),  # brandname not declared for the receiver's telco
    ("Check template", Verdict.REFUSING),  # templates are registered per provider: another may take it
    ("Check RequestID", Verdict.REFUSING),  # how we call it: our bug
    ("Check UserID", Verdict.REFUSING),
    ("UserID_NOT_EQUAL_ReceiverID", Verdict.REFUSING),
    ("Check CommandCode", Verdict.REFUSING),
    ("Check ContentType", Verdict.REFUSING),
)
# RequestID must be a number ("Check RequestID: REQUEST_ID_NOT_NUMBER"); ours is TB + 16 hex digits.
REQUEST_ID_BITS = 63  # fits a signed 64-bit long, whatever Viettel parses it into


def numeric_request_id(request_id: str) -> str:
    """A decimal RequestID derived from ours: the same notification always sends the same number."""
    digest = hashlib.sha256(request_id.encode()).digest()
    return str(int.from_bytes(digest[:8], "big") >> (64 - REQUEST_ID_BITS))


def verdict_of(result: int, message: str) -> Verdict:
    if result == 1:
        return Verdict.SENT
    for prefix, verdict in MESSAGE_VERDICTS:
        if message.startswith(prefix):
            return verdict
    return Verdict.RETRYABLE


class ViettelSms(SmsProvider):
    name = "viettel"

    def __init__(self, settings: ViettelSmsSettings) -> None:
        self.settings = settings
        self.http = PerThreadHttp(abandon_after=settings.timeout_seconds)
        self._form_lock = threading.Lock()
        self._form: EnvelopeForm | None = None

    def _client(self) -> zeep.Client:
        """zeep, from the WSDL (read once: envelope_form keeps what it needs of it)."""
        transport = Transport(session=requests.Session(), timeout=self.settings.timeout_seconds,
                              operation_timeout=self.settings.timeout_seconds)
        try:
            return zeep.Client(self.settings.wsdl_url, transport=transport)
        except (requests.RequestException, zeep.exceptions.Error, OSError) as exc:
            raise RetryableError(f"viettel: WSDL unavailable: {type(exc).__name__}: {exc}") from exc

    def envelope_form(self) -> EnvelopeForm:
        """The wsCpMt envelope for our account, built by zeep from the WSDL once per process."""
        with self._form_lock:
            if self._form is None:
                s = self.settings
                self._form = EnvelopeForm.from_zeep(self._client(), {
                    "User": s.user, "Password": s.password, "CPCode": s.cp_code, "ServiceID": s.brandname,
                    "CommandCode": "bulksms"})
            return self._form

    def send(self, sms: Sms) -> str:
        form = self.envelope_form()
        request_id = numeric_request_id(sms.request_id)
        body = form.fill({"RequestID": request_id, "UserID": sms.to, "ReceiverID": sms.to, "Content": sms.text,
                          "ContentType": "1" if sms.unicode else "0"})
        try:
            reply = self.http.post(form.address, body, form.headers, timeout=self.settings.timeout_seconds)
        except (requests.RequestException, OSError) as exc:
            raise RetryableError(f"viettel: {type(exc).__name__}: {exc}") from exc
        result, message = form.read_answer(reply.status_code, reply.content)
        raise_for(verdict_of(result, message), self.name, str(result), message)
        return request_id  # wsCpMt gives no id of its own: the RequestID is the one it knows the message by
