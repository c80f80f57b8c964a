"""Telling a partner's outage from a job's own failures, so that an outage does not use up attempts.

A job has `jobs.max_attempts` to get through; they are meant for trouble of its own (a payload the
partner chokes on). When the partner is down for everyone, every job fails alike, and counting those
failures would turn a long outage into a pile of dead letters, each holding up its dossier's later
jobs. So a queue counts as down once its calls have failed in a row, retryably, for jobs of
`jobs.outage_after_keys` different dossiers with no success between. While it is down, failures are
not counted as attempts (the job still waits out its backoff, so the partner is probed, not hammered);
the first success ends it. Each worker process learns this by itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from prometheus_client import Gauge

PARTNER_DOWN = Gauge("gateway_partner_down", "1 while this process takes the queue's partner to be down",
                     ["queue"], multiprocess_mode="max")


class OutageWatch:
    def __init__(self, keys: int) -> None:
        self.keys = keys
        self._failing: dict[str, set[str]] = {}  # queue -> ordering keys failed in a row since a success
        self._lock = threading.Lock()

    def observe(self, queue: str, failed_keys: Iterable[str], succeeded: bool) -> bool:
        """Record one batch's outcome (keys of its retryable failures, whether anything got through);
        answer whether the queue's partner is down."""
        with self._lock:
            if succeeded:
                self._failing.pop(queue, None)
            else:
                self._failing.setdefault(queue, set()).update(failed_keys)
        down = self.down(queue)
        PARTNER_DOWN.labels(queue).set(1 if down else 0)
        return down

    def down(self, queue: str) -> bool:
        with self._lock:
            return len(self._failing.get(queue, ())) >= self.keys
