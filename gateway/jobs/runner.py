"""One attempt at one job: claim it, call its adapter, record the outcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from gateway.adapters.base import AdapterError, DuplicateError, Handler, ThrottledError
from gateway.config import JobSettings
from gateway.store import outbox

from .retry_schedule import retry_delay

log = logging.getLogger(__name__)

# Publishes (job id, queue) pairs; returns the ids it could not publish.
Publish = Callable[[list[tuple[int, str]]], list[int]]


@dataclass(frozen=True)
class Outcome:
    job_id: int
    state: str  # done, retry, dead, skipped
    error: str | None = None


class JobRunner:
    def __init__(self, engine: Engine, handlers: Mapping[str, Handler], settings: JobSettings) -> None:
        self.engine = engine
        self.handlers = handlers
        self.settings = settings

    def run(self, job_id: int, publish: Publish) -> Outcome:
        with self.engine.begin() as conn:
            job = outbox.claim(conn, job_id, now=datetime.now(UTC), lease=self.settings.lease_seconds)
        if job is None:
            return Outcome(job_id, "skipped")

        started = time.monotonic()
        error: AdapterError | Exception | None = None
        try:
            handler = self.handlers[job["kind"]]
            handler(job["payload"])
        except DuplicateError:
            error = None  # the partner already has it: that is what we wanted
        except KeyError as exc:
            error = AdapterError(f"no handler for job kind {exc}")
            error.retryable = False
        except AdapterError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen failure: retry, then dead letter
            log.exception("job %s (%s) failed unexpectedly", job_id, job["kind"])
            error = exc
        elapsed = time.monotonic() - started

        attempt = job["attempts"]
        now = datetime.now(UTC)
        next_job = None
        with self.engine.begin() as conn:
            if error is None:
                state = "done"
                recorded = outbox.complete(conn, job_id, attempt, now=now)
                if recorded:
                    next_job = outbox.successor(conn, job["queue"], job["ordering_key"], job_id)
            else:
                text = f"{type(error).__name__}: {error}"
                retryable = getattr(error, "retryable", True)
                if retryable and attempt < job["max_attempts"]:
                    state = "retry"
                    delay = retry_delay(attempt, base=self.settings.backoff_base_seconds,
                                        cap=self.settings.backoff_cap_seconds,
                                        retry_after=error.retry_after if isinstance(error, ThrottledError) else None)
                    recorded = outbox.retry_later(conn, job_id, attempt, now=now, at=now + timedelta(seconds=delay),
                                                  error=text)
                else:
                    state = "dead"
                    recorded = outbox.bury(conn, job_id, attempt, now=now, error=text)
        if not recorded:
            # Our lease ran out and the sweeper gave the job to someone else; their record wins.
            log.warning("job %s: lease lost before the outcome (%s) was recorded", job_id, state)
        log.info("job %s %s attempt %s -> %s in %.0f ms%s", job_id, job["kind"], attempt, state, elapsed * 1000,
                 f" ({error})" if error else "")
        if next_job is not None:
            publish([(next_job, job["queue"])])
        return Outcome(job_id, state, None if error is None else str(error))
