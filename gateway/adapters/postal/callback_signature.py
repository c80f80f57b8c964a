"""VNPost tracking callbacks are signed: X-VNPost-Signature = hex HMAC-SHA256 of the raw body."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-VNPost-Signature"


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str | None, secret: str) -> bool:
    return bool(signature) and bool(secret) and hmac.compare_digest(sign(body, secret), signature.strip().lower())
