"""The Standard Webhooks signature (standardwebhooks.com): HMAC-SHA256 over "id.timestamp.body" with a
secret given as "whsec_" + base64, sent as `webhook-signature: v1,<base64>` beside `webhook-id` and
`webhook-timestamp`. A receiver recomputes it and refuses a timestamp outside its tolerance, so a
captured message cannot be replayed later."""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "whsec_"


def secret_bytes(secret: str) -> bytes:
    if not secret.startswith(PREFIX):
        raise ValueError("a Standard Webhooks secret starts with 'whsec_'")
    return base64.b64decode(secret[len(PREFIX):], validate=True)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret_bytes(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(secret: str, msg_id: str, timestamp: str, body: bytes, signatures: str, *, now: float,
           tolerance_seconds: float = 300) -> bool:
    """What a receiver does: the timestamp within tolerance, and one of the space-separated signatures right."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance_seconds:
        return False
    expected = sign(secret, msg_id, sent, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures.split())
