"""Fake one-stop software (một cửa điện tử) receiving the gateway's optional webhook push.

It checks every delivery as a careful receiver of Standard Webhooks would: the signature over
"id.timestamp.body" with the shared secret, a timestamp within tolerance, and a message id not seen
before (a repeat is acknowledged and ignored). Accepted feed items are kept in order at `_mock/items`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from flask import Blueprint, Response, jsonify, request

from mocks.harness import MockConfig, MockState, add_standard_endpoints, finish, replaced_outcome

DEV_SECRET = "whsec_" + base64.b64encode(b"one-stop-webhook-secret-dev").decode()


@dataclass
class OneStopConfig(MockConfig):
    POSITIVE: ClassVar[frozenset[str]] = frozenset({"tolerance_seconds"})
    secret: str = DEV_SECRET
    tolerance_seconds: float = 300.0


class OneStopState(MockState[OneStopConfig]):
    """The message ids seen and the feed items accepted, oldest first."""

    config_class = OneStopConfig

    def clear(self) -> None:
        self.seen: set[str] = set()
        self.items: list[dict[str, Any]] = []


def _signature_ok(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = "v1," + base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body,
                                                 hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, given) for given in header.split())


def create_blueprint() -> Blueprint:
    bp = Blueprint("one_stop", __name__)
    state = OneStopState()
    log, faults = state.log, state.faults
    add_standard_endpoints(bp, state)

    @bp.post("/webhooks")
    def webhook() -> Response | tuple[Response, int]:
        msg_id = request.headers.get("webhook-id", "")
        stamp = request.headers.get("webhook-timestamp", "")
        signature = request.headers.get("webhook-signature", "")
        body = request.get_data()
        verdict = "accepted"
        with state.lock:
            secret, tolerance = state.config.secret, state.config.tolerance_seconds
        if not (msg_id and stamp.isdigit() and signature):
            verdict = "missing headers"
        elif abs(time.time() - int(stamp)) > tolerance:
            verdict = "timestamp outside tolerance"
        elif not _signature_ok(secret, msg_id, int(stamp), body, signature):
            verdict = "bad signature"
        if verdict != "accepted":
            log.append({"service": "webhook", "id": msg_id, "verdict": verdict})
            return jsonify({"error": verdict}), 401
        fault = faults.take("webhook")
        outcome = replaced_outcome(fault, (503, {"error": "busy"}))
        if outcome is not None:
            log.append({"service": "webhook", "id": msg_id, "verdict": "fault"})
            return finish(fault, *outcome)
        with state.lock:
            repeat = msg_id in state.seen
            if not repeat:  # a batch sent again after a lost answer is acknowledged, not applied twice
                state.seen.add(msg_id)
                state.items.extend(json.loads(body)["items"])
        log.append({"service": "webhook", "id": msg_id, "verdict": "duplicate" if repeat else "accepted"})
        return finish(fault, 200, {"status": "duplicate" if repeat else "ok"})

    @bp.get("/_mock/items")
    def items() -> Response:
        with state.lock:
            return jsonify({"items": list(state.items)})

    return bp
