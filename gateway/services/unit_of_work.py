"""What every use case needs: the database, the job settings and a way to publish after commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from gateway.config import JobSettings, PaymentSettings, PostalSettings
from gateway.domain.working_calendar import WorkingCalendar
from gateway.services.notifications.outgoing import CitizenNotifier
from gateway.store import outbox

Publish = Callable[[list[tuple[int, str]]], list[int]]


@dataclass
class Context:
    engine: Engine
    jobs: JobSettings
    publish: Publish
    payment: PaymentSettings = field(default_factory=PaymentSettings)
    notifier: CitizenNotifier | None = None  # None: citizens are not told (benchmarks of other paths, unit tests)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)
    acknowledge_within_hours: float = 8.0
    postal: PostalSettings = field(default_factory=PostalSettings)
    verify_attachments: bool = False  # queue a signature check of each PDF attachment of a filed dossier
    archive: bool = False  # seal an archive package of each dossier that reaches a final status
    archive_batch_wait: float = 0.0  # its package waits this long for others to share its archive timestamp
    first_portal_check: timedelta = timedelta(minutes=10)  # a new dossier's first read-back at the national portal

    # A message only wakes a worker, which then claims a batch (jobs.batch_size) of the queue's ready jobs and
    # drains on while batches come full: one message per batch of jobs, at most a few per queue to get several
    # workers going. Each further message would cost a confirmed publish here and a claim that finds nothing.
    WAKEUPS_PER_QUEUE = 4

    def publish_after_commit(self, jobs: list[tuple[int, str]]) -> None:
        """Wake workers for the committed jobs; if the broker refuses, the sweeper sends them later."""
        by_queue: dict[str, list[int]] = defaultdict(list)
        for job_id, queue in jobs:
            by_queue[queue].append(job_id)
        per_batch = max(1, self.jobs.batch_size)
        wakeups = [(ids[n * per_batch], queue) for queue, ids in by_queue.items()
                   for n in range(min(-(-len(ids) // per_batch), self.WAKEUPS_PER_QUEUE))]
        if self.publish(wakeups):
            with self.engine.begin() as conn:
                outbox.mark_unpublished(conn, [job_id for job_id, _ in jobs])
