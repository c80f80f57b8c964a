"""Viettel brandname SMS: SOAP (wsCpMt), through zeep and the provider's WSDL."""

from __future__ import annotations

import threading

import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport

from gateway.adapters.base import RetryableError
from gateway.config import ViettelSmsSettings

from .base import Sms, SmsProvider, Verdict, raise_for

# wsCpMt answers result 1 (sent) or 0 with a message; the message's prefix says why. Unknown: retryable.
MESSAGE_VERDICTS: tuple[tuple[str, Verdict], ...] = (
    ("Success", Verdict.SENT),
    ("Duplicate", Verdict.DUPLICATE),
    ("Check_Input_Data: ReceiverID", Verdict.REJECTED),
    ("Check_Input_Data: Content", Verdict.REJECTED),
    ("Check_Input_Data", Verdict.REFUSING),  # CommandCode, RequestID, ContentType: how we call them
    ("Authenticate", Verdict.REFUSING),
    ("Check_Brandname", Verdict.REFUSING),
    ("System_Busy", Verdict.RETRYABLE),
)


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
        try:
            answer = self._client().service.wsCpMt(
                User=s.user, Password=s.password, CPCode=s.cp_code, RequestID=sms.request_id, UserID=sms.to,
                ReceiverID=sms.to, ServiceID=s.brandname, CommandCode="bulksms", Content=sms.text,
                ContentType="1" if sms.unicode else "0")
        except zeep.exceptions.Fault as exc:  # a SOAP Fault: the server failed; try again later
            raise RetryableError(f"viettel: SOAP fault: {exc.message}") from exc
        except (requests.RequestException, zeep.exceptions.Error, OSError) as exc:
            raise RetryableError(f"viettel: {type(exc).__name__}: {exc}") from exc
        result, message = int(answer.result or 0), answer.message or ""
        raise_for(verdict_of(result, message), self.name, str(result), message)
        return sms.request_id  # wsCpMt gives no id of its own: ours is the one it knows the message by
