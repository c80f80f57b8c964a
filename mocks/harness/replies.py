"""How a fault changes a reply: the outcome it substitutes, its sleep, a connection cut without a byte."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, jsonify, make_response, request

from mocks.harness.faults import Fault

# Modes where the call is still applied (the effect happens, only the reply suffers).
APPLYING_MODES = ("delay", "drop")

Payload = Any  # anything jsonify accepts (or what a mock's own renderer takes)
Outcome = tuple[int, Payload]


def replaced_outcome(fault: Fault | None, busy: Outcome | None) -> Outcome | None:
    """The reply a fault substitutes for the real call, or None if the call must run.

    `busy` is the mock's own "transient system error" reply, used for `error_code` (None: the call runs).
    """
    if fault is None or fault.mode in APPLYING_MODES:
        return None
    if fault.mode == "http_500":
        return 500, {"error": "internal_error", "message": "Injected fault: HTTP 500"}
    if fault.mode == "timeout":
        return 504, {"error": "gateway_timeout", "message": "Injected fault: timeout"}
    return busy


def guarded(allowed: Callable[[], bool], refusal: Outcome, run: Callable[[], Outcome]) -> Callable[[], Outcome]:
    """`run` for a caller who must hold a valid token or session: `refusal` (the partner's own answer) when
    `allowed()` says no. Checked as the call runs, after its fault was taken, as the partner would."""

    def call() -> Outcome:
        return run() if allowed() else refusal

    return call


def json_reply(status: int, payload: Payload) -> Response:
    return make_response(jsonify(payload), status)


def challenged(status: int, payload: Payload, scheme: str, error: str) -> Response:
    """json_reply; a 401 also says which credentials the call wants and why it refused them, as
    `WWW-Authenticate: <scheme> error="<error>"` (RFC 6750 §3 for Bearer)."""
    resp = json_reply(status, payload)
    if status == 401:
        resp.headers["WWW-Authenticate"] = f'{scheme} error="{error}"'
    return resp


def finish(
    fault: Fault | None, status: int, payload: Payload, render: Callable[[int, Payload], Response] = json_reply
) -> Response:
    """Turn an outcome into the reply (JSON unless the mock renders its own: XML, PDF), after the fault's
    sleep or drop."""
    if fault is not None and fault.mode in ("timeout", "delay"):
        time.sleep(fault.seconds)
    if fault is not None and fault.mode == "drop":
        return dropped_response()
    return render(status, payload)


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
