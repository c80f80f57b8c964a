"""Sending an SMS through providers by priority, skipping for a while one that keeps failing.

The skip list lives in each worker process: a provider down for one worker is down for all soon enough, and
sharing it would make the database a dependency of every send. A skipped provider is still tried, last,
so that a message is never held back only because every provider failed a minute ago.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.adapters.base import AdapterError, DuplicateError, PermanentError, RetryableError, ThrottledError

from .base import RejectedError, Sms, SmsProvider


@dataclass(frozen=True)
class Attempt:
    provider: str
    outcome: str  # sent, duplicate, retryable, throttled, rejected, refusing, skipped
    detail: str = ""


@dataclass
class Sent:
    provider: str
    message_id: str
    attempts: list[Attempt] = field(default_factory=list)


class AllFailed(AdapterError):
    """No provider sent it; retryable if any might later. Carries what each provider said."""

    def __init__(self, message: str, attempts: list[Attempt], retryable: bool) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.retryable = retryable


def outcome_of(exc: AdapterError) -> str:
    """How an attempt that raised `exc` is recorded."""
    if isinstance(exc, RejectedError):
        return "rejected"
    if isinstance(exc, PermanentError):
        return "refusing"
    return "throttled" if isinstance(exc, ThrottledError) else "retryable"


class SmsFailover:
    def __init__(self, providers: Sequence[SmsProvider], skip_after_failures: int, skip_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.providers = list(providers)
        self.skip_after = skip_after_failures
        self.skip_seconds = skip_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._skipped_until: dict[str, float] = {}

    def skipped(self) -> dict[str, float]:
        """Providers skipped now, with the seconds left."""
        now = self.clock()
        with self._lock:
            return {name: until - now for name, until in self._skipped_until.items() if until > now}

    def _order(self) -> tuple[list[SmsProvider], list[SmsProvider]]:
        skipped = self.skipped()
        return ([p for p in self.providers if p.name not in skipped], [p for p in self.providers if p.name in skipped])

    def _failed(self, name: str) -> None:
        with self._lock:
            self._failures[name] = self._failures.get(name, 0) + 1
            if self._failures[name] >= self.skip_after:
                self._skipped_until[name] = self.clock() + self.skip_seconds
                self._failures[name] = 0

    def _worked(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)
            self._skipped_until.pop(name, None)

    def first(self) -> str:
        """The provider asked first when none is skipped."""
        return self.providers[0].name

    def send(self, sms: Sms, *, in_doubt: bool = False) -> Sent:
        """Through the providers by priority. `in_doubt`: a worker may have sent it before stopping; it sent it
        through the first provider (notifications hold no other outcome unrecorded), so that one is asked
        first, skipped or not, and answers "duplicate" if it took it."""
        attempts: list[Attempt] = []
        healthy, skipped = (self.providers, []) if in_doubt else self._order()
        attempts += [Attempt(p.name, "skipped", "failing recently; tried last") for p in skipped]
        retryable = False
        for provider in healthy + skipped:
            try:
                message_id = provider.send(sms)
            except DuplicateError as exc:
                self._worked(provider.name)
                attempts.append(Attempt(provider.name, "duplicate", str(exc)))
                return Sent(provider.name, sms.request_id, attempts)
            except RejectedError as exc:  # any provider would say the same: stop here, for good
                attempts.append(Attempt(provider.name, "rejected", str(exc)))
                raise AllFailed(str(exc), attempts, retryable=False) from exc
            except AdapterError as exc:
                self._failed(provider.name)
                attempts.append(Attempt(provider.name, outcome_of(exc), str(exc)))
                retryable = retryable or isinstance(exc, RetryableError)
                continue
            self._worked(provider.name)
            attempts.append(Attempt(provider.name, "sent"))
            return Sent(provider.name, message_id, attempts)
        summary = "; ".join(f"{a.provider}: {a.outcome}" for a in attempts if a.outcome != "skipped")
        raise AllFailed(f"no SMS provider sent it ({summary})", attempts, retryable=retryable)
