"""What every mock instance holds besides its partner's protocol: a lock, the log, faults, settings."""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from flask import Response, request

from mocks.harness.config import MockConfig
from mocks.harness.faults import Fault, FaultInjector
from mocks.harness.incoming import raw_body
from mocks.harness.log import RequestLog
from mocks.harness.replies import Outcome, Payload, finish, json_reply, replaced_outcome

C = TypeVar("C", bound=MockConfig)
Renderer = Callable[[int, Payload], Response]


class MockState(Generic[C]):
    """One mock instance: `lock`, `log`, `faults` and its `config` (a MockConfig subclass).

    A subclass names `config_class` and drops its partner's own state (orders, tokens, messages) in
    `clear()`. `reset()`, which `_mock/reset` calls after emptying the log and the faults, puts the
    default settings back and calls `clear()`.
    """

    config_class: ClassVar[type[MockConfig]] = MockConfig
    config: C

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.log = RequestLog()
        self.faults = FaultInjector()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.config = self.config_class()  # type: ignore[assignment]
            self.clear()

    def clear(self) -> None:
        """Drop the partner's own state; called under the lock."""

    def copy_of(self, records: dict[str, Any], key: str | None = None) -> Any:
        """A deep copy of all `records`, or of the one under `key` (None if there is none)."""
        with self.lock:
            return copy.deepcopy(records if key is None else records.get(key))

    def record(self, service: str | None, body: Any, status: int, response: Any, fault: Fault | None,
               **extra: Any) -> None:
        """Log one call. A mock adds its own fields (and masks its secrets) by overriding this."""
        self.log.append(
            {
                "path": request.path,
                "service": service,
                "body": body,
                # For delay/drop this is what was computed; the client may never see it.
                "status": status,
                "response": response,
                "fault": fault.mode if fault else None,
            }
            | extra
        )

    def serve(
        self,
        service: str | None,
        body: Any,
        run: Callable[[], Outcome],
        busy: Callable[[Fault], Outcome],
        *,
        control: bool = False,
        render: Renderer = json_reply,
    ) -> Response:
        """Take a fault for `service`, run the call unless the fault replaces it, log, then reply.

        `busy` is the partner's own "try again" answer to an `error_code` fault. `control` marks log-in
        and token calls: they only fault when a fault names them, so a blanket fault spares authentication.
        """
        fault = self.faults.take(service or "", explicit_only=control)
        replaced = replaced_outcome(fault, busy(fault)) if fault is not None else None
        status, payload = replaced or run()
        self.record(service, body, status, payload, fault)
        return finish(fault, status, payload, render)

    def serve_after_checks(
        self,
        service: str,
        body: Any,
        run: Callable[[Fault | None], Outcome],
        *,
        replace: Callable[[Fault], Outcome | None] = lambda fault: replaced_outcome(fault, None),
        render: Renderer = json_reply,
    ) -> Response:
        """serve() for a partner whose own checks win over an `error_code` fault.

        Only http_500 and timeout replace the call here (`replace` gives the partner's form of them);
        `run` gets the fault and answers `error_code` itself once the request has passed its checks.
        """
        fault = self.faults.take(service)
        replaced = replace(fault) if fault is not None and fault.mode in ("http_500", "timeout") else None
        status, payload = replaced or run(fault)
        self.record(service, body, status, payload, fault)
        return finish(fault, status, payload, render)

    def unreadable(self, service: str | None, status: int, payload: Payload, *, logged: str | None = None,
                   render: Renderer = json_reply) -> Response:
        """Answer a body that cannot be read. It never consumes a fault: faults need a readable call.

        The body is logged as text (`logged`, when the mock has masked its secrets in it)."""
        self.record(service, raw_body() if logged is None else logged, status, payload, None)
        return finish(None, status, payload, render)


class CredentialStore:
    """Tokens or sessions a mock issued, each valid `ttl()` seconds from issue. Thread-safe on its own.

    The TTL is read at every check, so a tester who shortens it over `_mock/config` sees the effect live.
    """

    def __init__(self, ttl: Callable[[], float], nbytes: int = 32) -> None:
        self._ttl = ttl
        self._nbytes = nbytes
        self._lock = threading.Lock()
        self._issued: dict[str, float] = {}  # credential -> issued (monotonic)

    def issue(self) -> str:
        credential = secrets.token_urlsafe(self._nbytes)
        with self._lock:
            self._issued[credential] = time.monotonic()
        return credential

    def valid(self, credential: Any) -> bool:
        with self._lock:
            issued = self._issued.get(credential) if isinstance(credential, str) else None
        return issued is not None and time.monotonic() - issued < self._ttl()

    def expire_all(self) -> None:
        with self._lock:
            self._issued.clear()
