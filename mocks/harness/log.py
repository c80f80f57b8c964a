"""The request log every mock keeps: what it received, what it answered, which fault it took."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any


class RequestLog:
    """Thread-safe, append-only log of the calls a mock received (newest last)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict[str, Any]] = []

    def append(self, record: dict[str, Any]) -> int:
        """Store a record, stamping `index` and `at`; returns the index."""
        with self._lock:
            index = len(self._records)
            stamped = {"index": index, "at": datetime.now(UTC).isoformat(timespec="milliseconds")}
            self._records.append(stamped | record)
            return index

    def records(self, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._records[max(since, 0) :]]

    def total(self) -> int:
        with self._lock:
            return len(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


MASK = "***"


def masked(body: Any, *keys: str) -> Any:
    """A copy of a body to log with the secret `keys` (where present and not null) shown as ***."""
    if not isinstance(body, dict):
        return body
    return {k: MASK if k in keys and v is not None else v for k, v in body.items()}
