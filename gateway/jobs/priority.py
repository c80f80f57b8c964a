"""Background queues: work that yields to the others, so that a peak defers it instead of slowing them.

A worker consumes its background queues (the archive's) on a thread of their own, never on the threads that
deliver steps, messages and payments; before each batch that thread asks `why_wait`: while more than
`backlog_over` jobs of the other queues are due and unclaimed, waiting for a thread, it waits too, and so leaves
the process's CPU (and the GIL) to them. It never waits longer than `at_most_seconds` past the time its oldest
job became due: then it runs a batch anyway, so that a province busy all day still seals its packages.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from gateway.store import outbox, server_clock
from gateway.store.database import reading


@dataclass
class YieldToOthers:
    engine: Engine
    queues: list[str]  # the background queues
    backlog_over: int  # jobs due on the other queues above which the background waits
    at_most_seconds: float  # 0: it never waits

    def why_wait(self) -> str | None:
        """Why the background queues should wait now, or None: go."""
        if self.at_most_seconds <= 0:
            return None
        now = server_clock.now()
        with reading(self.engine) as conn:
            waiting = outbox.due_backlog(conn, now=now, besides=self.queues, limit=self.backlog_over + 1)
            if waiting <= self.backlog_over:
                return None
            oldest = outbox.oldest_due(conn, self.queues, now=now)
        if oldest is not None and (now - oldest).total_seconds() >= self.at_most_seconds:
            return None  # waited long enough: one batch now, then it looks again
        return f"more than {self.backlog_over} jobs wait on the other queues"
