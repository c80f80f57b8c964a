"""Running jobs: claim a batch of due jobs, deliver them through their adapters, record the outcomes.

A message on a queue is only a wake-up call. The runner then drains the queue: it claims the due
jobs that head their ordering key, up to a batch at a time, until none is left (or its time slice
ends). Finishing a job makes the next one of its dossier a head, so a dossier's backlog flows through
without another message, and always in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from gateway import request_context
from gateway.adapters.base import BatchHandler, DuplicateError, LeaseEnding, PermanentError, ThrottledError, calls_until
from gateway.config import JobSettings
from gateway.store import audit, outbox, server_clock
from gateway.store.database import one_statement

from .job_metrics import BATCH_SECONDS, JOBS
from .partner_outage import OutageWatch
from .retry_schedule import retry_delay

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    job_id: int
    state: str  # done, retry, dead, lost (our lease ran out before we could record)
    error: str | None = None


@dataclass(frozen=True)
class Drained:
    outcomes: list[Outcome]
    more: bool  # stopped by the time slice with work left


@dataclass(frozen=True)
class _Batch:
    outcomes: list[Outcome]
    promoted: bool  # finishing made later jobs of the same keys ready: they have no message of their own
    next: outbox.Claim | None  # the batch after it, claimed in the transaction that recorded this one


@dataclass(frozen=True)
class _Unrecorded:
    """A batch run whose outcomes could not be written (the database out of reach): kept to write once it is back,
    while the claim lasts."""

    claim: outbox.Claim
    results: list[Exception | None]
    partner_down: bool


# The database out of reach (a cut link, a restart): what a batch's outcomes are kept through.
_UNREACHABLE = (OperationalError, InterfaceError)


# Run in the transaction that makes a job a dead letter: (connection, the job's payload, its last error).
DeadHook = Callable[[Connection, dict[str, Any], str], None]


@dataclass(frozen=True)
class QueuePolicy:
    """A queue claimed otherwise than jobs.batch_size and jobs.lease_seconds say: archive packages go in batches
    of their own size, with a lease long enough to seal one, and a due job brings the ones queued behind it along
    (outbox.claim_heads `early`)."""

    batch_size: int
    lease_seconds: float
    early: bool = False


class JobRunner:
    def __init__(self, engine: Engine, handlers: Mapping[str, BatchHandler], settings: JobSettings,
                 on_dead: Mapping[str, DeadHook] | None = None,
                 policies: Mapping[str, QueuePolicy] | None = None) -> None:
        self.engine = engine
        self.handlers = handlers
        self.settings = settings
        self.on_dead: Mapping[str, DeadHook] = on_dead or {}
        self.policies: Mapping[str, QueuePolicy] = policies or {}
        self.outages = OutageWatch(settings.outage_after_keys)
        self._unrecorded: list[_Unrecorded] = []
        self._unrecorded_lock = threading.Lock()

    def drain(self, queue: str, should_stop: Callable[[], bool] = lambda: False) -> Drained:
        """Run batches until the queue has nothing ready. A batch smaller than a claim that made no later job
        ready ends the drain without claiming again (an empty claim is a transaction for nothing): whatever
        became ready meanwhile was committed by someone who publishes a wake-up for it after the commit.
        Otherwise the next batch is claimed in the transaction that records this one: a commit per batch."""
        outcomes: list[Outcome] = []
        deadline = time.monotonic() + self.settings.drain_seconds
        with one_statement(self.engine) as conn:
            claim = self._claim(conn, queue, server_clock.now())

        def go_on() -> bool:  # asked when a batch is recorded: claimed jobs are always run, or they sit out a lease
            return not should_stop() and time.monotonic() <= deadline

        while claim.jobs:
            batch = self._run(queue, claim, claim_next=go_on)
            outcomes += batch.outcomes
            if batch.next is None:  # no more to claim, or the time slice is over (the rest is handed on)
                more = len(claim.jobs) >= self._policy(queue).batch_size or batch.promoted
                return Drained(outcomes, more=more and not should_stop() and time.monotonic() > deadline)
            claim = batch.next
        return Drained(outcomes, more=False)

    def run_batch(self, queue: str) -> list[Outcome]:
        with one_statement(self.engine) as conn:
            claim = self._claim(conn, queue, server_clock.now())
        return self._run(queue, claim).outcomes if claim.jobs else []

    def _policy(self, queue: str) -> QueuePolicy:
        return self.policies.get(queue) or QueuePolicy(self.settings.batch_size, self.settings.lease_seconds)

    def _claim(self, conn: Connection, queue: str, now: datetime) -> outbox.Claim:
        """The next batch of a queue (a drain's first, or the one claimed where the last is recorded), as big and
        with as long a lease as the queue's policy says."""
        policy = self._policy(queue)
        return outbox.claim_heads(conn, queue, now=now, lease=policy.lease_seconds, limit=policy.batch_size,
                                  early=policy.early)

    def run_claimed(self, queue: str, claim: outbox.Claim) -> list[Outcome]:
        """Deliver jobs already claimed (by run_batch, or by a request trying a job at once) and record."""
        return self._run(queue, claim).outcomes

    def _run(self, queue: str, claim: outbox.Claim, *, claim_next: Callable[[], bool] | None = None) -> _Batch:
        started = time.monotonic()
        caused_by = {job["id"]: job.get("request_id") or "-" for job in claim.jobs}
        requests = sorted(set(caused_by.values()))
        # A batch from one request (the usual case when a request tries its job at once) runs under its id,
        # so whatever the adapter logs can be found with the request's.
        token = request_context.request_id.set(requests[0]) if len(requests) == 1 else None
        # The calls must be over before the lease ends (adapters/base.py before_calling): on this host's
        # monotonic clock, from the database's time left.
        left = (claim.lease_end - server_clock.now()).total_seconds()
        try:
            with calls_until(time.monotonic() + left):
                results = self._deliver(claim.jobs)
        finally:
            if token is not None:
                request_context.request_id.reset(token)
        outage = self._observe(claim, results)
        try:
            batch = self._record(claim, results, outage, claim_next=claim_next)
        except _UNREACHABLE:
            self._keep(_Unrecorded(claim, results, outage))
            raise
        outcomes = batch.outcomes
        counts = _counted(claim, outcomes)
        BATCH_SECONDS.labels(queue).observe(time.monotonic() - started)
        log.info("%s: %d job(s) in %.0f ms: %s; requests %s", queue, len(outcomes),
                 (time.monotonic() - started) * 1000, counts, " ".join(requests[:20]))
        failed = [o for o in outcomes if o.error]
        partner_down = bool(failed) and self.outages.down(queue)
        if partner_down:  # one line a batch, not thousands while a partner is down
            log.warning("%s: partner down, %d job(s) wait without using attempts: %s", queue, len(failed),
                        failed[0].error)
        for outcome in outcomes:
            rid = {"request_id": caused_by[outcome.job_id]}
            if outcome.error and not partner_down:
                log.warning("job %s -> %s: %s", outcome.job_id, outcome.state, outcome.error, extra=rid)
            else:
                log.debug("job %s -> %s: %s", outcome.job_id, outcome.state, outcome.error or "ok", extra=rid)
        return batch

    def _deliver(self, jobs: list[Any]) -> list[Exception | None]:
        results: list[Exception | None] = [None] * len(jobs)
        by_kind: dict[str, list[int]] = defaultdict(list)
        for i, job in enumerate(jobs):
            by_kind[job["kind"]].append(i)
        for kind, idx in by_kind.items():
            handler = self.handlers.get(kind)
            if handler is None:
                answers: list[Exception | None] = [PermanentError(f"no handler for job kind {kind!r}")] * len(idx)
            else:
                try:
                    answers = list(handler([jobs[i]["payload"] for i in idx]))
                except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen failure: retry, then dead letter
                    log.exception("%d %s job(s) failed unexpectedly", len(idx), kind)
                    answers = [exc] * len(idx)
            for i, answer in zip(idx, answers, strict=True):
                results[i] = None if isinstance(answer, DuplicateError) else answer
        return results

    def _observe(self, claim: outbox.Claim, results: list[Exception | None]) -> bool:
        """Tell the outage watch how the batch's calls went; whether its partner now counts as down."""
        return self.outages.observe(
            claim.jobs[0]["queue"], succeeded=any(error is None for error in results),
            failed_keys=[job["ordering_key"] for job, error in zip(claim.jobs, results, strict=True)
                         if error is not None and getattr(error, "retryable", True)
                         and not isinstance(error, LeaseEnding)])  # not called: says nothing of the partner

    def _keep(self, unrecorded: _Unrecorded) -> None:
        log.warning("%s: the outcomes of %d job(s) could not be written; kept to write once the database answers, "
                    "until their claim ends at %s", unrecorded.claim.jobs[0]["queue"], len(unrecorded.claim.jobs),
                    unrecorded.claim.lease_end.isoformat())
        now = server_clock.now()
        with self._unrecorded_lock:  # a process without a sweeper (the API's) never writes them: keep only live claims
            self._unrecorded = [u for u in self._unrecorded if u.claim.lease_end > now] + [unrecorded]

    def record_late(self) -> int:
        """Write the outcomes kept while the database was out of reach; how many were written (not lost).

        Without this, a worker whose database link failed mid-batch (a partition, a database restart) leaves its
        claimed jobs to sit out their lease although it is back: a minute for most queues, five for an archive
        batch. A claim that has ended is dropped: the sweeper has handed its jobs on, and the later holder's record
        wins. The worker's sweeper calls this every sweep interval."""
        with self._unrecorded_lock:
            kept, self._unrecorded = self._unrecorded, []
        written = 0
        for n, unrecorded in enumerate(kept):
            jobs = unrecorded.claim.jobs
            if unrecorded.claim.lease_end <= server_clock.now():
                log.warning("%s: the claim of %d job(s) ended before their outcomes could be written: the sweeper "
                            "hands them on", jobs[0]["queue"], len(jobs))
                continue
            try:
                batch = self._record(unrecorded.claim, unrecorded.results, unrecorded.partner_down, claim_next=None)
            except Exception:
                with self._unrecorded_lock:  # still out of reach (or worse): next time, this one and the rest
                    self._unrecorded[:0] = kept[n:]
                raise
            written += sum(o.state != "lost" for o in batch.outcomes)
            log.warning("%s: outcomes of %d job(s) written late: %s", jobs[0]["queue"], len(batch.outcomes),
                        _counted(unrecorded.claim, batch.outcomes))
        return written

    def _record(self, claim: outbox.Claim, results: list[Exception | None], partner_down: bool, *,
                claim_next: Callable[[], bool] | None) -> _Batch:
        """Record the outcomes; if the batch was full or made later jobs ready and `claim_next` says go on, claim
        the next batch in the same transaction."""
        now = server_clock.now()
        queue = claim.jobs[0]["queue"]
        outcomes: list[Outcome] = []
        with self.engine.begin() as conn:
            delivered = [job for job, error in zip(claim.jobs, results, strict=True) if error is None]
            # Their records go in with them when every one is done, the usual case (outbox.finish).
            as_done = [Outcome(job["id"], "done") for job in delivered]
            finished = outbox.finish(conn, delivered, claim.lease_end, now=now,
                                     audit=_calls_made(claim.jobs, as_done, now))
            recorded = set(finished.done)
            outcomes += [Outcome(job["id"], "done" if job["id"] in recorded else "lost") for job in delivered]
            for job, error in zip(claim.jobs, results, strict=True):
                if error is None:
                    continue
                text = f"{type(error).__name__}: {error}"
                attempt = job["attempts"]
                retryable = getattr(error, "retryable", True)
                if isinstance(error, LeaseEnding):  # never called: again at once, at no cost of an attempt
                    ok = outbox.retry_later(conn, job["id"], claim.lease_end, now=now, at=now, error=text, refund=True)
                    outcomes.append(Outcome(job["id"], "retry" if ok else "lost", text))
                elif retryable and (partner_down or attempt < job["max_attempts"]):
                    delay = retry_delay(attempt, base=self.settings.backoff_base_seconds,
                                        cap=self.settings.backoff_cap_seconds,
                                        retry_after=error.retry_after if isinstance(error, ThrottledError) else None)
                    # The partner is down for everyone: this failure is not the job's, so it costs no attempt.
                    ok = outbox.retry_later(conn, job["id"], claim.lease_end, now=now,
                                            at=now + timedelta(seconds=delay), error=text, refund=partner_down)
                    outcomes.append(Outcome(job["id"], "retry" if ok else "lost", text))
                else:
                    ok = outbox.bury(conn, job["id"], claim.lease_end, now=now, error=text)
                    if ok:
                        self.buried(conn, job, text)
                    outcomes.append(Outcome(job["id"], "dead" if ok else "lost", text))
            audit.record_many(conn, _calls_made(claim.jobs, outcomes[len(delivered):] if finished.audited else outcomes,
                                                now))
            more = len(claim.jobs) >= self._policy(queue).batch_size or bool(finished.promoted)
            following = None
            if more and claim_next is not None and claim_next():
                following = self._claim(conn, queue, now)
        if any(o.state == "lost" for o in outcomes):
            # The lease ran out and the sweeper handed the jobs on; the later holder's record wins.
            log.warning("lease lost before some outcomes were recorded: %s",
                        [o.job_id for o in outcomes if o.state == "lost"])
        return _Batch(outcomes, bool(finished.promoted), following)

    def buried(self, conn: Connection, job: Any, error: str) -> None:
        """A job just became a dead letter: let its kind react (say, mark a payment failed)."""
        if (hook := self.on_dead.get(job["kind"])) is not None:
            hook(conn, job["payload"], error)


def _counted(claim: outbox.Claim, outcomes: list[Outcome]) -> dict[str, int]:
    """The outcomes by state, each counted in gateway_jobs_processed_total."""
    kinds = {job["id"]: job["kind"] for job in claim.jobs}
    for outcome in outcomes:
        JOBS.labels(claim.jobs[0]["queue"], kinds[outcome.job_id], outcome.state).inc()
    return dict(Counter(outcome.state for outcome in outcomes))


def _calls_made(jobs: list[Any], outcomes: list[Outcome], now: datetime) -> list[dict[str, Any]]:
    """The audit of the outbound calls a batch made: one record per kind and outcome, naming its jobs, their
    dossiers and requests (a partner takes up to a batch in one call; a lost lease records nothing)."""
    by_id = {job["id"]: job for job in jobs}
    groups: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.state != "lost":
            groups[(by_id[o.job_id]["kind"], o.state)].append(o)
    return [{"at": now, "actor": "worker", "action": f"job.{state}", "subject": by_id[group[0].job_id]["queue"],
             "detail": {"kind": kind, "jobs": [o.job_id for o in group],
                        "keys": [by_id[o.job_id]["ordering_key"] for o in group],
                        "attempts": [by_id[o.job_id]["attempts"] for o in group],
                        "request_ids": sorted({by_id[o.job_id].get("request_id") or "-" for o in group}),
                        **({"error": group[0].error[:500]} if group[0].error else {})}}
            for (kind, state), group in groups.items()]
