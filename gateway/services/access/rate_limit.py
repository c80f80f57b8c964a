"""Per-key request limits through `limits` (the field's rate-limit library): a moving window of one minute,
counted in this process or shared through Redis.

With several API processes, the in-process count allows each of them the full rate; point
`auth.rate_limit_redis_url` at Redis for one limit across them all.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod

from limits import RateLimitItemPerMinute, storage, strategies

log = logging.getLogger(__name__)


class RateLimiter(ABC):
    @abstractmethod
    def wait_needed(self, name: str, per_minute: int) -> float:
        """Count one request of `name`; 0 if it may go ahead, else the seconds until it may."""


class _MovingWindow(RateLimiter):
    """No more than `per_minute` requests of one key in any 60 seconds; a refused one is not counted."""

    def __init__(self, store: storage.Storage) -> None:
        self.window = strategies.MovingWindowRateLimiter(store)

    def wait_needed(self, name: str, per_minute: int) -> float:
        item = RateLimitItemPerMinute(per_minute)
        if self.window.hit(item, "key", name):
            return 0.0
        # reset_time: when the oldest request in the window leaves it, so one more may go.
        return max(self.window.get_window_stats(item, "key", name).reset_time - time.time(), 0.001)


class LocalBuckets(_MovingWindow):
    def __init__(self) -> None:
        super().__init__(storage.MemoryStorage())


class RedisWindow(_MovingWindow):
    def __init__(self, url: str) -> None:
        import redis  # only needed when configured

        super().__init__(storage.storage_from_string(url, socket_timeout=0.5, socket_connect_timeout=0.5))
        self.errors = redis.RedisError

    def wait_needed(self, name: str, per_minute: int) -> float:
        try:
            return super().wait_needed(name, per_minute)
        except self.errors as exc:  # Redis down: serve rather than refuse everyone; say so
            log.warning("rate limit not applied, Redis unavailable: %s", exc)
            return 0.0
