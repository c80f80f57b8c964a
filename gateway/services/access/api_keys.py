"""Who is calling: API keys from the settings and from the database, known only by their SHA-256.

Keys in the database are added and revoked at run time (CLI or /ops/api-keys); each API process
remembers a lookup for `auth.key_cache_seconds`, so a revocation takes effect within that time
everywhere without a restart, and a request costs no query most of the time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, get_args

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from gateway.config import AuthSettings, Role
from gateway.services.errors import Conflict, NotFound, ServiceError
from gateway.store import api_keys as store
from gateway.store import audit, server_clock

ROLES = frozenset(get_args(Role))
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class InvalidKey(ServiceError):
    code = "validation_failed"


@dataclass(frozen=True)
class Caller:
    name: str
    roles: frozenset[str]
    rate_per_minute: int | None  # None: the default


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    def __init__(self, engine: Engine, settings: AuthSettings) -> None:
        self.engine = engine
        self.settings = settings
        self._configured = {k.key_sha256: Caller(k.name, frozenset(k.roles), k.rate_per_minute)
                            for k in settings.api_keys}
        self._cache: dict[str, tuple[Caller | None, float]] = {}
        self._lock = threading.Lock()

    def caller(self, key: str) -> Caller | None:
        return self.caller_by_digest(digest(key))

    def caller_by_digest(self, hashed: str) -> Caller | None:
        """The key's holder by the key's SHA-256 (what the console's session keeps), if still valid."""
        if (configured := self._configured.get(hashed)) is not None:
            return configured
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(hashed)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self.engine.connect() as conn:
            row = store.by_hash(conn, hashed)
        found = Caller(row["name"], frozenset(row["roles"]), row["rate_per_minute"]) if row else None
        with self._lock:
            if len(self._cache) > 10_000:  # unknown keys sprayed at us must not grow it without bound
                self._cache.clear()
            self._cache[hashed] = (found, now + self.settings.key_cache_seconds)
        return found

    def add(self, name: str, roles: list[str], *, rate_per_minute: int | None, actor: str) -> str:
        """Create a key; the plaintext is returned once and never stored."""
        if not NAME.match(name):
            raise InvalidKey("a key name is 1-100 lowercase letters, digits, '.', '_' or '-'")
        if not roles or not set(roles) <= ROLES:
            raise InvalidKey(f"roles must be some of {sorted(ROLES)}")
        if rate_per_minute is not None and rate_per_minute < 1:
            raise InvalidKey("rate_per_minute must be at least 1")
        if any(k.name == name for k in self.settings.api_keys):
            raise Conflict(f"key {name!r} is in the settings")
        key = "gw_" + secrets.token_urlsafe(32)
        now = server_clock.now()
        try:
            with self.engine.begin() as conn:
                store.add(conn, {"name": name, "key_sha256": digest(key), "roles": sorted(set(roles)),
                                 "rate_per_minute": rate_per_minute, "created_by": actor, "created_at": now})
                audit.record(conn, actor=actor, action="api_key.added", subject=f"api_key:{name}", at=now,
                             detail={"roles": sorted(set(roles)), "rate_per_minute": rate_per_minute})
        except IntegrityError:
            raise Conflict(f"a key named {name!r} already exists (revoked keys keep their name)") from None
        return key

    def revoke(self, name: str, *, actor: str) -> None:
        now = server_clock.now()
        with self.engine.begin() as conn:
            if not store.revoke(conn, name, now):
                raise NotFound(f"no active key {name!r}")
            audit.record(conn, actor=actor, action="api_key.revoked", subject=f"api_key:{name}", at=now)
        with self._lock:  # this process forgets it at once; the others within key_cache_seconds
            self._cache.clear()

    def describe(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = store.all_keys(conn)
        configured = [{"name": k.name, "roles": sorted(k.roles), "rate_per_minute": k.rate_per_minute,
                       "source": "settings", "revoked_at": None} for k in self._configured.values()]
        stored = [{"name": r["name"], "roles": r["roles"], "rate_per_minute": r["rate_per_minute"],
                   "source": "database", "created_by": r["created_by"], "created_at": r["created_at"].isoformat(),
                   "revoked_at": r["revoked_at"].isoformat() if r["revoked_at"] else None} for r in rows]
        return configured + stored
