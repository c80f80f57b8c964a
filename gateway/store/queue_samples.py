"""Samples of each queue's backlog and dead letters: written by the workers, read by the console's chart."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, RowMapping, delete, func, insert, select

from .outbox import DEAD, IN_FLIGHT, PENDING
from .tables import jobs, queue_samples

KEEP = timedelta(days=1)


def take(conn: Connection, *, now: datetime, queues: list[str]) -> int:
    """One sample per queue, from the unfinished and dead jobs only (a partial index: cheap whatever the
    history); queues with nothing waiting are sampled as 0, so the line drops back. Old samples go."""
    counts = {(r.queue, r.state): r.count for r in conn.execute(
        select(jobs.c.queue, jobs.c.state, func.count().label("count"))
        .where(jobs.c.state.in_((PENDING, IN_FLIGHT, DEAD))).group_by(jobs.c.queue, jobs.c.state))}
    names = sorted({*queues, *(queue for queue, _ in counts)})
    rows = [{"at": now, "queue": q, "backlog": counts.get((q, PENDING), 0) + counts.get((q, IN_FLIGHT), 0),
             "dead": counts.get((q, DEAD), 0)} for q in names]
    conn.execute(insert(queue_samples), rows)
    conn.execute(delete(queue_samples).where(queue_samples.c.at < now - KEEP))
    return len(rows)


def since(conn: Connection, start: datetime) -> list[RowMapping]:
    return list(conn.execute(select(queue_samples.c.at, queue_samples.c.queue, queue_samples.c.backlog,
                                    queue_samples.c.dead)
                             .where(queue_samples.c.at >= start).order_by(queue_samples.c.at)).mappings())
