"""Pushing the change feed to the one-stop software, besides it reading the feed itself.

One pusher at a time (a lease on the single cursor row, so a worker dying mid-push hands over after the
lease) reads the feed after its cursor and POSTs up to `batch_size` items, in order, signed Standard
Webhooks style. The message id names the cursors it carries (`feed-<first>-<last>`), so a batch sent
again after a lost answer is recognised by the receiver; the cursor moves only after a 2xx and is
stored batch by batch, so a pusher taking over resends the same batch, not new bounds. A failing
receiver is retried with the jobs' backoff; the feed itself stays the source of truth.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine

from gateway.adapters.base import AdapterError, ThrottledError
from gateway.adapters.webhooks.client import WebhookClient
from gateway.config import JobSettings, WebhookSettings
from gateway.jobs.retry_schedule import retry_delay
from gateway.store import feed, server_clock, webhook_cursor

log = logging.getLogger(__name__)


def lease_for(settings: WebhookSettings) -> timedelta:
    """Long enough for one batch to go out and be answered: the lease is extended batch by batch, so a
    pusher that dies hands over this soon, not after a whole push."""
    return timedelta(seconds=2 * settings.timeout_seconds + 5)


class WebhookPusher:
    def __init__(self, engine: Engine, settings: WebhookSettings, jobs: JobSettings,
                 client: WebhookClient | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.jobs = jobs
        self.client = client or WebhookClient(settings)
        self.lease = lease_for(settings)

    def push(self, max_batches: int = 20) -> int:
        """Push what is new (up to `max_batches` batches); how many items the receiver took."""
        now = server_clock.now()
        held_until = now + self.lease
        with self.engine.begin() as conn:
            state = webhook_cursor.lease(conn, now=now, until=held_until)
        if state is None:  # another pusher holds it, or a retry is not due yet
            return 0
        cursor, through, attempts, pushed = state["cursor"], state["pending_through"], state["attempts"], 0
        error: AdapterError | None = None
        for _ in range(max_batches):
            with self.engine.begin() as conn:
                feed.place(conn)
                rows = feed.read(conn, cursor, self.settings.batch_size)
            if through is not None:  # resend the unanswered batch exactly as it was, under the same id
                rows = [r for r in rows if r["position"] <= through]
            if not rows:
                break
            first, last = rows[0]["position"], rows[-1]["position"]
            # The batch's bounds are stored before it goes out and the cursor as soon as it is taken: a
            # pusher that dies (or outlives its lease) mid-push leaves the row saying exactly what the
            # receiver may already hold, so whoever takes over resends that batch under the same id
            # rather than cutting new bounds, and nothing reaches the receiver twice under two ids.
            held_until = self._hold(held_until, cursor, last, attempts)
            if held_until is None:
                return pushed
            try:
                self.client.deliver(f"feed-{first}-{last}", {"items": [feed.as_item(r) for r in rows]})
            except AdapterError as exc:
                error, through = exc, last
                break
            cursor, through, attempts, pushed = last, None, 0, pushed + len(rows)
            held_until = self._hold(held_until, cursor, None, attempts)
            if held_until is None:
                return pushed
        retry_at = None
        if error is not None:
            attempts += 1
            delay = retry_delay(attempts, base=self.jobs.backoff_base_seconds, cap=self.jobs.backoff_cap_seconds,
                                retry_after=error.retry_after if isinstance(error, ThrottledError) else None)
            retry_at = server_clock.now() + timedelta(seconds=delay)
            log.warning("webhook push failed (attempt %d, next in %.0f s): %s", attempts, delay, error)
        with self.engine.begin() as conn:
            if not webhook_cursor.release(conn, held_until=held_until, cursor=cursor, pending_through=through,
                                          attempts=attempts, retry_at=retry_at, error=str(error) if error else None,
                                          now=server_clock.now()):
                log.warning("webhook push outlived its lease; the next pusher resends from the stored cursor")
        return pushed

    def _hold(self, held_until: datetime, cursor: int, pending_through: int | None,
              attempts: int) -> datetime | None:
        """Store progress and extend the lease; the new lease end, or None if another pusher took over."""
        now = server_clock.now()
        until = now + self.lease
        with self.engine.begin() as conn:
            if webhook_cursor.hold(conn, held_until=held_until, until=until, cursor=cursor,
                                   pending_through=pending_through, attempts=attempts, now=now):
                return until
        log.warning("webhook push outlived its lease; stopping, the pusher holding it now goes on")
        return None
