"""What every use case needs: the database, the job settings and a way to publish after commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from gateway.config import JobSettings
from gateway.store import outbox

Publish = Callable[[list[tuple[int, str]]], list[int]]


@dataclass
class Context:
    engine: Engine
    jobs: JobSettings
    publish: Publish

    def publish_after_commit(self, jobs: list[tuple[int, str]]) -> None:
        """Send the committed jobs to the broker; the ones it refused are left for the sweeper."""
        failed = self.publish(jobs)
        if failed:
            with self.engine.begin() as conn:
                outbox.mark_unpublished(conn, failed)
