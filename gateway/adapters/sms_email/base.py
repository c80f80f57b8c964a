"""The SMS provider port, and how a provider's answer codes become the adapter error kinds.

Each provider keeps one table from its answer codes to a Verdict. Two kinds of refusal matter for failover:
a REJECTED message (bad number, bad content) would be refused by any provider, so nobody tries again; a
provider REFUSING us (credentials, brandname not registered) is that provider's problem, so the next one
takes over.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum

from gateway.adapters.base import DuplicateError, PermanentError, RetryableError, ThrottledError


class Verdict(StrEnum):
    SENT = "sent"
    DUPLICATE = "duplicate"  # the provider already took this request id: it was sent
    RETRYABLE = "retryable"
    THROTTLED = "throttled"
    REJECTED = "rejected"  # the message itself: no provider would take it
    REFUSING = "refusing"  # this provider refuses us (account, brandname): another may not


class RejectedError(PermanentError):
    """The message is refused for what it is (number, content): not retried, not sent elsewhere."""


@dataclass(frozen=True)
class Sms:
    request_id: str  # stable per notification: a provider that dedupes sees a retry as the same message
    to: str  # 84xxxxxxxxx
    text: str
    unicode: bool  # UCS-2 (with diacritics) rather than GSM-7


class SmsProvider(ABC):
    """One brandname SMS provider."""

    name: str

    @abstractmethod
    def send(self, sms: Sms) -> str:
        """Send it; return the provider's message id, or raise an error kind."""


def raise_for(verdict: Verdict, provider: str, code: str, text: str) -> None:
    """Turn a provider's answer into the adapter's error kinds; return quietly when it was sent."""
    message = f"{provider}: {code} {text}".strip()
    if verdict is Verdict.SENT:
        return
    if verdict is Verdict.DUPLICATE:
        raise DuplicateError(message)
    if verdict is Verdict.THROTTLED:
        raise ThrottledError(message)
    if verdict is Verdict.RETRYABLE:
        raise RetryableError(message)
    if verdict is Verdict.REJECTED:
        raise RejectedError(message)
    raise PermanentError(message)
