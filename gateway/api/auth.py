"""API keys: `Authorization: Bearer <key>`, each key with roles. Keys are compared by SHA-256 hash."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request

from .errors import ApiError


def _caller() -> tuple[str, set[str]]:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'",
                       headers={"WWW-Authenticate": "Bearer"})
    digest = hashlib.sha256(key.strip().encode()).hexdigest()
    for api_key in current_app.config["GATEWAY"].settings.auth.api_keys:
        if hmac.compare_digest(digest, api_key.key_sha256 or ""):
            return api_key.name, set(api_key.roles)
    raise ApiError(401, "unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"})


def require(*roles: str) -> Callable:
    """Let the request through only for a key holding one of `roles`; g.caller names the key."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            name, held = _caller()
            if not held.intersection(roles):
                raise ApiError(403, "forbidden", f"this endpoint needs one of the roles {sorted(roles)}")
            g.caller = name
            g.roles = held
            return view(*args, **kwargs)

        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate
