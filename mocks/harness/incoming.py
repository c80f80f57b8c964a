"""Reading a partner's request the way every mock does."""

from __future__ import annotations

import hmac
import re
from typing import Any

from flask import request

from mocks.harness.log import MASK

RAW_BODY_CHARS = 2000  # an unreadable body is logged, kept short


def json_object() -> dict[str, Any] | None:
    """The body as a JSON object, or None if it is not one (whatever its Content-Type says)."""
    body = request.get_json(force=True, silent=True)
    return body if isinstance(body, dict) else None


def raw_body() -> str:
    """The body as text, for logging a request that could not be read."""
    return request.get_data(as_text=True)[:RAW_BODY_CHARS]


def raw_body_masked(secret: re.Pattern[str], mask: str = MASK) -> str:
    """raw_body() with each match of `secret` shown as its group 1 followed by `mask`: an unreadable
    body is still logged without its password."""
    return secret.sub(lambda match: match.group(1) + mask, raw_body())


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer ...` header."""
    auth = request.authorization
    return auth.token if auth is not None and auth.type == "bearer" else None


def same_secret(given: Any, expected: str) -> bool:
    """Whether a received credential is `expected`, compared in constant time (as bytes: compare_digest
    refuses non-ASCII text); anything but a string is not."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())
