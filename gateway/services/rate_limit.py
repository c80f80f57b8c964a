"""Per-key request limits: a token bucket in this process, or a one-minute window shared through Redis.

With several API processes, the in-process bucket allows each of them the full rate; point
`auth.rate_limit_redis_url` at Redis for one limit across them all.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class RateLimiter(ABC):
    @abstractmethod
    def wait_needed(self, name: str, per_minute: int) -> float:
        """Count one request of `name`; 0 if it may go ahead, else the seconds until it may."""


class LocalBuckets(RateLimiter):
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last refill)
        self._lock = threading.Lock()

    def wait_needed(self, name: str, per_minute: int) -> float:
        now = time.monotonic()
        rate = per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(name, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens >= 1:
                self._buckets[name] = (tokens - 1, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1 - tokens) / rate


class RedisWindow(RateLimiter):
    def __init__(self, url: str) -> None:
        import redis  # only needed when configured

        self.redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.errors = redis.RedisError

    def wait_needed(self, name: str, per_minute: int) -> float:
        now = time.time()
        window = math.floor(now / 60)
        key = f"gateway:rate:{name}:{window}"
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, 61)
        try:
            count = pipe.execute()[0]
        except self.errors as exc:  # Redis down: serve rather than refuse everyone; say so
            log.warning("rate limit not applied, Redis unavailable: %s", exc)
            return 0.0
        return 0.0 if count <= per_minute else (window + 1) * 60 - now
