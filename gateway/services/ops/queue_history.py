"""The queues' backlog over time: sampled by the workers, shown by the console."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine

from gateway.domain.queue_history import Minute, per_minute
from gateway.store import queue_samples, server_clock


def sample(engine: Engine, queues: list[str]) -> int:
    with engine.begin() as conn:
        return queue_samples.take(conn, now=server_clock.now(), queues=queues)


def last_hour(engine: Engine, *, now: datetime | None = None) -> list[Minute]:
    now = now or server_clock.now()
    with engine.connect() as conn:
        rows = queue_samples.since(conn, now - timedelta(hours=1))
    return per_minute(rows, now=now)
