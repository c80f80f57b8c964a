"""Shared test harness for mocks: request log, fault injection and the `_mock/*` endpoints."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any, ClassVar

from flask import Blueprint, Response, jsonify, make_response, request

FAULT_MODES = ("http_500", "timeout", "error_code", "drop", "delay")
# Faults on the callbacks a mock sends (payment): only taken by `take(..., modes=CALLBACK_MODES)`.
CALLBACK_MODES = ("no_callback", "callback_twice", "bad_checksum", "changed_amount")
# Faults of binary protocols (the TSA, OCSP): a 200 whose body is no valid reply. Taken with `modes=` only.
PROTOCOL_MODES = ("garbage",)
# Default sleep per mode: a timeout must outlast any sane client timeout; a delay
# only needs to be long enough for a test to kill the client mid-call.
DEFAULT_SECONDS = {"timeout": 30.0, "delay": 5.0}
# Modes where the call is still applied (the effect happens, only the reply suffers).
APPLYING_MODES = ("delay", "drop")

Payload = Any  # anything jsonify accepts
Outcome = tuple[int, Payload]


class RequestLog:
    """Thread-safe, append-only log of the calls a mock received (newest last)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []

    def append(self, record: dict[str, Any]) -> int:
        """Store a record, stamping `index` and `at`; returns the index."""
        with self._lock:
            index = len(self._records)
            stamped = {"index": index, "at": datetime.now(UTC).isoformat(timespec="milliseconds")}
            self._records.append(stamped | record)
            return index

    def records(self, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._records[max(since, 0) :]]

    def total(self) -> int:
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


@dataclass(frozen=True)
class Fault:
    mode: str
    seconds: float
    services: frozenset[str] | None  # None = every regular service call
    code: str | None = None  # for error_code: the business code to answer (a mock's own busy code if None)

    def applies_to(self, service: str, explicit_only: bool) -> bool:
        if self.services is None:
            return not explicit_only
        return service in self.services

    def to_json(self) -> dict[str, Any]:
        services = sorted(self.services) if self.services is not None else None
        armed = {"mode": self.mode, "seconds": self.seconds, "services": services}
        return armed | ({"code": self.code} if self.code is not None else {})


class FaultInjector:
    """Thread-safe queue of armed faults; each matching call consumes one count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[list[Any]] = []  # [Fault, remaining count], oldest first

    def arm(self, mode: str, count: int, seconds: float | None = None, services: list[str] | None = None,
            code: str | None = None) -> Fault:
        if mode not in FAULT_MODES + CALLBACK_MODES + PROTOCOL_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAULT_MODES + CALLBACK_MODES + PROTOCOL_MODES)}")
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
        if code is not None and (mode != "error_code" or not isinstance(code, str) or not code):
            raise ValueError("code is a non-empty string, and only for mode error_code")
        fault = Fault(
            mode=mode,
            seconds=float(seconds if seconds is not None else DEFAULT_SECONDS.get(mode, 0.0)),
            services=frozenset(services) if services is not None else None,
            code=code,
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


def arm_from_json(faults: FaultInjector, body: Any) -> Fault:
    """Arm a fault from a `_mock/faults` body; raises ValueError on a bad body."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    unknown = set(body) - {"mode", "count", "seconds", "services", "code"}
    if unknown:  # typos like "service" would otherwise silently arm a blanket fault
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    if "mode" not in body or "count" not in body:
        raise ValueError("mode and count are required")
    return faults.arm(body["mode"], body["count"], body.get("seconds"), body.get("services"), body.get("code"))


def add_mock_endpoints(
    blueprint: Blueprint, log: RequestLog, faults: FaultInjector, reset_callback: Callable[[], None]
) -> None:
    """Add `_mock/requests`, `_mock/faults` and `_mock/reset` to a mock's blueprint."""

    @blueprint.get("/_mock/requests")
    def mock_requests() -> Response | tuple[Response, int]:
        try:
            since = int(request.args.get("since", "0"))
        except ValueError:
            return jsonify({"error": "since must be an integer"}), 400
        return jsonify({"total": log.total(), "requests": log.records(since)})

    @blueprint.get("/_mock/faults")
    def mock_faults_list() -> Response:
        return jsonify({"faults": faults.armed()})

    @blueprint.post("/_mock/faults")
    def mock_faults_arm() -> Response | tuple[Response, int]:
        try:
            fault = arm_from_json(faults, request.get_json(force=True, silent=True))
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify({"armed": fault.to_json(), "faults": faults.armed()})

    @blueprint.delete("/_mock/faults")
    def mock_faults_clear() -> Response:
        faults.clear()
        return jsonify({"faults": []})

    @blueprint.post("/_mock/reset")
    def mock_reset() -> Response:
        log.clear()
        faults.clear()
        reset_callback()
        return jsonify({"status": "reset"})


@dataclass(frozen=True)
class MockParts:
    """One member of a mock that speaks for several providers (SMS): its log, faults and reset."""

    log: RequestLog
    faults: FaultInjector
    reset: Callable[[], None]


def add_combined_mock_endpoints(blueprint: Blueprint, members: dict[str, MockParts]) -> None:
    """`_mock/requests`, `_mock/faults` and `_mock/reset` at the top of a multi-provider mock.

    Requests of every member, oldest first, each marked with its `provider`; a fault names a
    `provider` or is armed on each member; reset resets them all. `?provider=` narrows reads and clears.
    """

    def chosen() -> dict[str, MockParts] | tuple[Response, int]:
        name = request.args.get("provider")
        if name is None:
            return members
        if name not in members:
            return jsonify({"error": f"provider must be one of {', '.join(members)}"}), 400
        return {name: members[name]}

    @blueprint.get("/_mock/requests")
    def combined_requests() -> Response | tuple[Response, int]:
        picked = chosen()
        if isinstance(picked, tuple):
            return picked
        try:
            since = int(request.args.get("since", "0"))
        except ValueError:
            return jsonify({"error": "since must be an integer"}), 400
        merged = sorted(
            ({"provider": name} | record for name, part in picked.items() for record in part.log.records()),
            key=lambda r: (r["at"], r["provider"], r["index"]),
        )
        return jsonify({"total": len(merged), "requests": merged[max(since, 0) :]})

    @blueprint.get("/_mock/faults")
    def combined_faults() -> Response | tuple[Response, int]:
        picked = chosen()
        if isinstance(picked, tuple):
            return picked
        return jsonify({"faults": [{"provider": n} | f for n, part in picked.items() for f in part.faults.armed()]})

    @blueprint.post("/_mock/faults")
    def combined_faults_arm() -> Response | tuple[Response, int]:
        body = request.get_json(force=True, silent=True)
        if isinstance(body, dict) and "provider" in body:
            name = body["provider"]
            if name not in members:
                return jsonify({"error": f"provider must be one of {', '.join(members)}"}), 400
            targets, body = {name: members[name]}, {k: v for k, v in body.items() if k != "provider"}
        else:
            targets = members
        try:
            # Checked once before arming any, so a bad body arms none.
            arm_from_json(FaultInjector(), body)
            armed = {name: arm_from_json(part.faults, body).to_json() for name, part in targets.items()}
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify({"armed": [{"provider": n} | f for n, f in armed.items()]})

    @blueprint.delete("/_mock/faults")
    def combined_faults_clear() -> Response | tuple[Response, int]:
        picked = chosen()
        if isinstance(picked, tuple):
            return picked
        for part in picked.values():
            part.faults.clear()
        return jsonify({"faults": []})

    @blueprint.post("/_mock/reset")
    def combined_reset() -> Response:
        for part in members.values():
            part.log.clear()
            part.faults.clear()
            part.reset()
        return jsonify({"status": "reset", "providers": list(members)})


def replaced_outcome(fault: Fault | None, busy: Outcome) -> Outcome | None:
    """The reply a fault substitutes for the real call, or None if the call must run.

    `busy` is the mock's own "transient system error" reply, used for `error_code`.
    """
    if fault is None or fault.mode in APPLYING_MODES:
        return None
    if fault.mode == "http_500":
        return 500, {"error": "internal_error", "message": "Injected fault: HTTP 500"}
    if fault.mode == "timeout":
        return 504, {"error": "gateway_timeout", "message": "Injected fault: timeout"}
    return busy


def finish(fault: Fault | None, status: int, payload: Payload) -> Response:
    """Turn an outcome into the reply, after the fault's sleep or drop."""
    if fault is not None and fault.mode in ("timeout", "delay"):
        time.sleep(fault.seconds)
    if fault is not None and fault.mode == "drop":
        return dropped_response()
    return make_response(jsonify(payload), status)


def _client_socket(environ: dict[str, Any]) -> socket.socket | None:
    """The server's socket to the client, from whichever server runs us."""
    for key in ("werkzeug.socket", "gunicorn.socket"):
        sock = environ.get(key)
        if isinstance(sock, socket.socket):
            return sock
    # waitress exposes no socket, but its `client_disconnected` hook is a bound
    # method of the channel, which owns the socket.
    channel = getattr(environ.get("waitress.client_disconnected"), "__self__", None)
    sock = getattr(channel, "socket", None)
    return sock if isinstance(sock, socket.socket) else None


class ConnectionDropped(ConnectionAbortedError):
    """Raised while sending the body when the socket could not be shut down."""


def dropped_response() -> Response:
    """A reply that never reaches the client: the connection is cut instead.

    Shutting the socket down (not closing it: the server still owns the fd) sends
    FIN without a single byte, so the client sees "connection closed without
    response". Servers then fail to write and quietly drop the connection. If no
    socket is reachable (Flask test client, unknown server), the body raises
    mid-stream so the server aborts the connection instead.
    """
    sock = _client_socket(request.environ)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
            return Response(b"", status=200)
        except OSError:
            pass  # already gone; fall through to the aborting body

    def abort() -> Iterator[bytes]:
        raise ConnectionDropped("connection dropped by injected fault")
        yield b""  # pragma: no cover - makes this a generator

    return Response(abort(), status=200, headers={"Content-Length": "1"})


class ConfigError(ValueError):
    """A `_mock/config` body that cannot be applied."""


@dataclass
class MockConfig:
    """Base of a mock's settings: partial updates over `_mock/config`, all-or-nothing.

    String fields take strings; float fields take numbers >= 0, or > 0 when named in POSITIVE.
    """

    POSITIVE: ClassVar[frozenset[str]] = frozenset()

    def update(self, changes: Any) -> None:
        if not isinstance(changes, dict):
            raise ConfigError("body must be a JSON object")
        types = {f.name: f.type for f in fields(self)}
        for key, value in changes.items():
            if key not in types:
                raise ConfigError(f"unknown config key: {key}")
            if types[key] == "str" and not isinstance(value, str):
                raise ConfigError(f"{key} must be a string")
            if types[key] == "float":
                number = not isinstance(value, bool) and isinstance(value, int | float)
                if key in self.POSITIVE and not (number and value > 0):
                    raise ConfigError(f"{key} must be a positive number")
                if not (number and value >= 0):
                    raise ConfigError(f"{key} must be a non-negative number")
        for key, value in changes.items():
            setattr(self, key, float(value) if types[key] == "float" else value)


def add_config_endpoints(bp: Blueprint, state: Any) -> None:
    """GET and POST `_mock/config` for a mock whose state has `lock` and a MockConfig `config`."""

    @bp.get("/_mock/config")
    def mock_config() -> Response:
        with state.lock:
            return jsonify(asdict(state.config))

    @bp.post("/_mock/config")
    def mock_config_update() -> Response | tuple[Response, int]:
        try:
            with state.lock:
                state.config.update(request.get_json(force=True, silent=True))
                return jsonify(asdict(state.config))
        except ConfigError as exc:
            return jsonify({"error": str(exc)}), 400
