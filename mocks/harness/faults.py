"""Fault injection: the faults a tester arms, and which call takes which."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass
from typing import Any

FAULT_MODES = ("http_500", "timeout", "error_code", "drop", "delay")
# Faults on the callbacks a mock sends (payment): only taken by `take(..., modes=CALLBACK_MODES)`.
CALLBACK_MODES = ("no_callback", "callback_twice", "bad_checksum", "changed_amount")
# Faults of binary protocols (the TSA, OCSP): a 200 whose body is no valid reply. Taken with `modes=` only.
PROTOCOL_MODES = ("garbage",)
# Drift of the national portal: the call is answered "done" but what it stores is not what was sent (see
# mocks/national_portal.py). Taken per record, with `modes=` only.
DRIFT_MODES = ("silent_drop", "alter", "operator_status", "lose")
ALL_MODES = FAULT_MODES + CALLBACK_MODES + PROTOCOL_MODES + DRIFT_MODES
# `code` says more about these: the business code to answer, the field to alter, the status an operator sets.
CODE_MODES = ("error_code", "alter", "operator_status")
# A share of calls draws from this seed: the same calls take the same faults, run after run.
SHARE_SEED = 20261124
# Default sleep per mode: a timeout must outlast any sane client timeout; a delay
# only needs to be long enough for a test to kill the client mid-call.
DEFAULT_SECONDS = {"timeout": 30.0, "delay": 5.0}


@dataclass(frozen=True)
class Fault:
    mode: str
    seconds: float
    services: frozenset[str] | None  # None = every regular service call
    code: str | None = None  # for error_code: the business code to answer (a mock's own busy code if None)
    share: float | None = None  # each matching call takes it with this probability (None: every call)

    def applies_to(self, service: str, explicit_only: bool) -> bool:
        if self.services is None:
            return not explicit_only
        return service in self.services

    def to_json(self) -> dict[str, Any]:
        services = sorted(self.services) if self.services is not None else None
        armed = {"mode": self.mode, "seconds": self.seconds, "services": services}
        return armed | ({"code": self.code} if self.code is not None else {}) | (
            {"share": self.share} if self.share is not None else {})


class FaultInjector:
    """Thread-safe queue of armed faults; each matching call consumes one count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[list[Any]] = []  # [Fault, remaining count], oldest first
        self._draws = random.Random(SHARE_SEED)

    def arm(self, mode: str, count: int, seconds: float | None = None, services: list[str] | None = None,
            code: str | None = None, share: float | None = None) -> Fault:
        if mode not in ALL_MODES:
            raise ValueError(f"mode must be one of {', '.join(ALL_MODES)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("count must be a positive integer")
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise ValueError("seconds must be a non-negative number")
        if services is not None and (
            not isinstance(services, list) or not services or not all(isinstance(s, str) and s for s in services)
        ):
            raise ValueError("services must be a non-empty list of service names")
        if code is not None and (mode not in CODE_MODES or not isinstance(code, str) or not code):
            raise ValueError(f"code is a non-empty string, and only for modes {', '.join(CODE_MODES)}")
        if share is not None and (isinstance(share, bool) or not isinstance(share, int | float)
                                  or not 0 < share <= 1):
            raise ValueError("share is a number above 0 and at most 1")
        fault = Fault(
            mode=mode,
            seconds=float(seconds if seconds is not None else DEFAULT_SECONDS.get(mode, 0.0)),
            services=frozenset(services) if services is not None else None,
            code=code,
            share=float(share) if share is not None else None,
        )
        with self._lock:
            self._armed.append([fault, count])
        return fault

    def take(
        self, service: str, explicit_only: bool = False, modes: tuple[str, ...] = FAULT_MODES
    ) -> Fault | None:
        """Consume one count of the oldest fault of one of `modes` that applies to `service`.

        `explicit_only` is for control-plane calls (login, token): they only fault
        when a fault names them, so a blanket fault does not break authentication.
        """
        with self._lock:
            for entry in self._armed:
                fault, remaining = entry
                if fault.mode in modes and fault.applies_to(service, explicit_only):
                    if fault.share is not None and self._draws.random() >= fault.share:
                        continue  # not this call: a share of the calls takes it
                    if remaining <= 1:
                        self._armed.remove(entry)
                    else:
                        entry[1] = remaining - 1
                    return fault
        return None

    def armed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() | {"count": remaining} for fault, remaining in self._armed]

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
            self._draws = random.Random(SHARE_SEED)


def arm_from_json(faults: FaultInjector, body: Any) -> Fault:
    """Arm a fault from a `_mock/faults` body; raises ValueError on a bad body."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    unknown = set(body) - {"mode", "count", "seconds", "services", "code", "share"}
    if unknown:  # typos like "service" would otherwise silently arm a blanket fault
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    if "mode" not in body or "count" not in body:
        raise ValueError("mode and count are required")
    return faults.arm(body["mode"], body["count"], body.get("seconds"), body.get("services"), body.get("code"),
                      body.get("share"))
