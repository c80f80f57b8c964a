"""Viettel brandname SMS: SOAP (wsCpMt), through zeep and the provider's WSDL."""

from __future__ import annotations

import hashlib
import threading

import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport

from gateway.adapters.base import RetryableError
from gateway.config import ViettelSmsSettings

from .base import Sms, SmsProvider, Verdict, raise_for

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
        self._local = threading.local()  # a zeep client (and its session) per worker thread

    def _client(self) -> zeep.Client:
        if not hasattr(self._local, "client"):
            transport = Transport(session=requests.Session(), timeout=self.settings.timeout_seconds,
                                  operation_timeout=self.settings.timeout_seconds)
            try:
                self._local.client = zeep.Client(self.settings.wsdl_url, transport=transport)
            except (requests.RequestException, zeep.exceptions.Error, OSError) as exc:
                raise RetryableError(f"viettel: WSDL unavailable: {type(exc).__name__}: {exc}") from exc
        return self._local.client

    def send(self, sms: Sms) -> str:
        s = self.settings
        request_id = numeric_request_id(sms.request_id)
        try:
            answer = self._client().service.wsCpMt(
                User=s.user, Password=s.password, CPCode=s.cp_code, RequestID=request_id, UserID=sms.to,
                ReceiverID=sms.to, ServiceID=s.brandname, CommandCode="bulksms", Content=sms.text,
                ContentType="1" if sms.unicode else "0")
        except zeep.exceptions.Fault as exc:  # a SOAP Fault: the server failed; try again later
            raise RetryableError(f"viettel: SOAP fault: {exc.message}") from exc
        except (requests.RequestException, zeep.exceptions.Error, OSError) as exc:
            raise RetryableError(f"viettel: {type(exc).__name__}: {exc}") from exc
        result, message = int(answer.result or 0), answer.message or ""
        raise_for(verdict_of(result, message), self.name, str(result), message)
        return request_id  # wsCpMt gives no id of its own: the RequestID is the one it knows the message by
