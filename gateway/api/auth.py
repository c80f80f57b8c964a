"""API keys: `Authorization: Bearer <key>`, each key with roles, known by its SHA-256 hash (settings or
database, services/access/api_keys.py), and held to its rate limit (429 with Retry-After)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request

from gateway.services.access.api_keys import Caller

from .errors import ApiError


def _caller() -> Caller:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'",
                       headers={"WWW-Authenticate": "Bearer"})
    caller = current_app.config["GATEWAY"].keys.caller(key.strip())
    if caller is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return caller


def _within_rate(caller: Caller) -> None:
    gateway = current_app.config["GATEWAY"]
    per_minute = caller.rate_per_minute or gateway.settings.auth.rate_limit_per_minute
    if not per_minute:
        return
    wait = gateway.limiter.wait_needed(caller.name, per_minute)
    if wait > 0:
        raise ApiError(429, "rate_limited", f"more than {per_minute} requests a minute for this key; try again "
                       f"in {math.ceil(wait)} s", headers={"Retry-After": str(math.ceil(wait))})


def require(*roles: str) -> Callable:
    """Let the request through only for a key holding one of `roles`, within its rate; g.caller names it."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = _caller()
            if not caller.roles.intersection(roles):
                raise ApiError(403, "forbidden", f"this endpoint needs one of the roles {sorted(roles)}")
            _within_rate(caller)
            g.caller = caller.name
            g.roles = set(caller.roles)
            return view(*args, **kwargs)

        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate
