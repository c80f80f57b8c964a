"""The outbox: jobs written in the same transaction as the change that causes them.

A job's life: pending -> in_flight -> done, or back to pending for a retry, or dead (a dead letter)
after its last attempt; an operator may revive a dead letter (pending again) or discard it.

Jobs sharing (queue, ordering_key) run strictly one after another, in id order. The job heading its
key is marked `ready`; only ready jobs are claimed, so claiming costs the same whatever the backlog.
A job is ready when enqueued behind nothing unfinished, or when the job before it is done or
discarded. On PostgreSQL both paths take a transaction-scoped advisory lock on the key, so a job
enqueued while the one before it is finishing is never left unready; SQLite has one writer anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    RowMapping,
    Select,
    and_,
    bindparam,
    exists,
    false,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql.selectable import TextualSelect

from gateway import request_context

from .one_trip import AFTER, OneTrip, Part, json_value
from .sql_forms import fixed, fixed_list, one_of
from .tables import jobs

PENDING, IN_FLIGHT, DONE, DEAD, DISCARDED = "pending", "in_flight", "done", "dead", "discarded"
UNFINISHED = (PENDING, IN_FLIGHT, DEAD)


@dataclass(frozen=True)
class NewJob:
    queue: str
    kind: str
    ordering_key: str
    payload: dict[str, Any]
    # Due this many seconds after it is queued (an archive package waiting for its batch to fill). Nobody
    # publishes for it at commit: the sweeper does once it is due.
    delay: float = 0.0


# Key locks in one order (by hash) whoever takes them, so that two holders of several keys never deadlock.
LOCK_KEYS_SQL = ("SELECT count(pg_advisory_xact_lock(h)) FROM "
                 "(SELECT hashtextextended(k, 0) AS h FROM unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS sorted")
_LOCK_KEYS = text(LOCK_KEYS_SQL)


def key_names(queue: str, keys: list[str]) -> list[str]:
    return sorted({f"{queue}:{k}" for k in keys})


def lock_keys(conn: Connection, queue: str, keys: list[str]) -> None:
    if conn.dialect.name == "postgresql" and keys:
        conn.execute(_LOCK_KEYS, {"keys": key_names(queue, keys)})


def lock_keys_of(conn: Connection, new: list[NewJob]) -> None:
    """The key locks of new jobs of any queues, in one statement (PostgreSQL), before they go into a one-trip write."""
    if conn.dialect.name == "postgresql" and new:
        conn.execute(_LOCK_KEYS, {"keys": sorted({f"{j.queue}:{j.ordering_key}" for j in new})})


def heads_offered(new: list[NewJob]) -> list[tuple[NewJob, bool]]:
    """New jobs for add_jobs, the first of each key offered as ready and the rest waiting behind it: one statement
    does not see its own rows, so HeadsOnly alone would take two new jobs of one key for heads."""
    seen: set[tuple[str, str]] = set()
    offered = []
    for job in new:
        offered.append((job, (job.queue, job.ordering_key) not in seen))
        seen.add((job.queue, job.ordering_key))
    return offered


def enqueue(conn: Connection, job: NewJob, *, now: datetime, max_attempts: int) -> tuple[int, bool]:
    """Insert a job; also say whether it waits behind an unfinished job of its key.

    A waiting job needs no message: the worker that finishes the job before it makes it ready and
    drains on. A ready job gets published_at set optimistically: the caller publishes right after
    commit and clears it on failure, so the common path costs no second write.
    """
    lock_keys(conn, job.queue, [job.ordering_key])
    waiting = has_unfinished(conn, job.queue, job.ordering_key)
    job_id = conn.execute(insert(jobs).values(
        queue=job.queue, kind=job.kind, ordering_key=job.ordering_key, payload=job.payload,
        state=PENDING, ready=not waiting, attempts=0, max_attempts=max_attempts,
        next_attempt_at=now + timedelta(seconds=job.delay) if job.delay else now,
        published_at=None if waiting or job.delay else now, created_at=now, updated_at=now,
        request_id=request_context.current(),
    ).returning(jobs.c.id)).scalar_one()
    return job_id, waiting


@dataclass(frozen=True)
class ClaimedPart:
    """A job claimed by its caller, in a one-trip write (add_claimed); its claim once the write ran."""

    part: Part
    row: dict[str, Any]
    lease_end: datetime

    def claim(self) -> Claim:
        return Claim([{**self.row, "id": self.part.returned[0]["id"]}], self.lease_end)


def add_claimed(trip: OneTrip, job: NewJob, *, now: datetime, lease: float, max_attempts: int) -> ClaimedPart:
    """A job already claimed by the caller, who runs its first attempt at once (a request that wants the answer
    now), into a one-trip write. If the caller dies, the lease runs out and the sweeper hands the job on. Its
    ordering key must be one the caller just made up (a new payment's or delivery's reference): no key lock to
    take, nothing queued before it to look for."""
    lease_end = now + timedelta(seconds=lease)
    row = {"queue": job.queue, "kind": job.kind, "ordering_key": job.ordering_key, "payload": job.payload,
           "state": IN_FLIGHT, "ready": True, "attempts": 1, "max_attempts": max_attempts, "next_attempt_at": now,
           "published_at": now, "locked_until": lease_end, "last_error": None, "created_at": now, "updated_at": now,
           "finished_at": None, "request_id": request_context.current()}
    return ClaimedPart(trip.insert(jobs, [row], returning=("id",)), row, lease_end)


def enqueue_many(conn: Connection, new: list[tuple[NewJob, bool]], *, now: datetime,
                 max_attempts: int) -> list[int]:
    """Insert jobs whose readiness the caller worked out (holding the keys' locks); ids in order."""
    rows = job_rows(new, now=now, max_attempts=max_attempts)
    result = conn.execute(insert(jobs).returning(jobs.c.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def job_rows(new: list[tuple[NewJob, bool]], *, now: datetime, max_attempts: int) -> list[dict[str, Any]]:
    """The rows of new jobs, each ready as the caller says; a ready one is marked published unless delayed (the
    sweeper publishes a delayed job once it is due)."""
    request_id = request_context.current()
    return [{"queue": job.queue, "kind": job.kind, "ordering_key": job.ordering_key, "payload": job.payload,
             "state": PENDING, "ready": ready, "attempts": 0, "max_attempts": max_attempts,
             "next_attempt_at": now + timedelta(seconds=job.delay) if job.delay else now,
             "published_at": now if ready and not job.delay else None, "created_at": now, "updated_at": now,
             "request_id": request_id} for job, ready in new]


class HeadsOnly:
    """A one_trip guard for new jobs: one the caller offers as ready (it heads its key within the caller's
    batch) is ready only if its key has no unfinished job when the statement runs. The caller holds the keys'
    locks (lock_keys) since an earlier statement, so that is a state no worker can change before the commit,
    and PostgreSQL decides it inside the insert itself: no look-up of its own, no round trip."""

    # A scalar subquery, not NOT EXISTS: the planner may turn an EXISTS into one hashed read of every unfinished
    # job, which with stale statistics it takes for cheap (43 ms against 0.1 with 50,000 waiting); this form is
    # always a look-up of the row's own key. The state list is ix_jobs_unfinished's predicate, word for word.
    _FREE = ("(SELECT 1 FROM jobs AS u WHERE u.queue = {r}.queue AND u.ordering_key = {r}.ordering_key "
             "AND u.state IN ('pending', 'in_flight', 'dead') LIMIT 1) IS NULL")

    def pg_columns(self, row: str) -> dict[str, str]:
        ready = f"({row}.ready AND {self._FREE.format(r=row)})"
        return {"ready": ready, "published_at": f"CASE WHEN {ready} THEN {row}.published_at END"}

    def prepare(self, conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        offered = {(r["queue"], r["ordering_key"]) for r in rows if r["ready"]}
        if not offered:
            return rows
        busy = {tuple(r) for r in conn.execute(
            select(jobs.c.queue, jobs.c.ordering_key).distinct().where(
                jobs.c.ordering_key.in_(sorted({key for _, key in offered})), jobs.c.state.in_(UNFINISHED)))}
        return [{**r, "ready": False, "published_at": None} if (r["queue"], r["ordering_key"]) in busy else r
                for r in rows]


def add_jobs(trip: OneTrip, new: list[tuple[NewJob, bool]], *, now: datetime, max_attempts: int,
             checked: bool = True, after: tuple[Part, str, list[Any]] | None = None) -> Part:
    """New jobs into a one-trip write. `checked`: a job offered as ready is so only if nothing unfinished
    precedes it in its key (HeadsOnly); unchecked for keys the caller just made up (a new reference).
    `after` (part, column, one value per job): each job only if the part wrote the row with that value."""
    rows = job_rows(new, now=now, max_attempts=max_attempts)
    returning = ("id", "queue", "ready", "published_at")
    if after is None:
        return trip.insert(jobs, rows, returning=returning, guard=HeadsOnly() if checked else None)
    part, match, names = after
    return trip.insert(jobs, [{**row, AFTER: name} for row, name in zip(rows, names, strict=True)],
                       returning=returning, guard=HeadsOnly() if checked else None, after=part, match=match)


def to_publish(part: Part) -> list[tuple[int, str]]:
    """The jobs a one-trip write made ready and due: the caller publishes them after commit (a delayed job,
    ready but not marked published, waits for the sweeper)."""
    return [(r["id"], r["queue"]) for r in part.returned if r["ready"] and r["published_at"] is not None]


def keys_with_unfinished(conn: Connection, queue: str, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    return set(conn.execute(keys_with_unfinished_query(conn, queue, keys)).scalars())


def keys_with_unfinished_query(conn: Connection, queue: str, keys: list[str]) -> Select:
    """The per-key look-up of archive scheduling (tests/test_job_statistics.py plans it; finishing a batch,
    `_promote`, reads the same index the same way)."""
    return select(jobs.c.ordering_key).distinct().where(
        jobs.c.queue == queue, one_of(conn, jobs.c.ordering_key, keys), jobs.c.state.in_(fixed_list(UNFINISHED)))


def unfinished_of_keys(conn: Connection, queue: str, keys: list[str]) -> dict[str, RowMapping]:
    """The newest unfinished job of each key in one queue (what a waiting item waits on, and until when)."""
    if not keys:
        return {}
    rows = conn.execute(select(jobs).where(jobs.c.queue == queue, jobs.c.ordering_key.in_(keys),
                                           jobs.c.state.in_(UNFINISHED)).order_by(jobs.c.id)).mappings()
    return {r["ordering_key"]: r for r in rows}


_HAS_UNFINISHED = select(jobs.c.id).where(
    jobs.c.queue == bindparam("queue"), jobs.c.ordering_key == bindparam("key"),
    jobs.c.state.in_(fixed_list(UNFINISHED))
).limit(1)


def has_unfinished(conn: Connection, queue: str, ordering_key: str) -> bool:
    return conn.execute(_HAS_UNFINISHED, {"queue": queue, "key": ordering_key}).first() is not None


def mark_unpublished(conn: Connection, job_ids: list[int]) -> None:
    conn.execute(update(jobs).where(jobs.c.id.in_(job_ids), jobs.c.state == PENDING).values(published_at=None))


def _promote(conn: Connection, queue: str, keys: list[str]) -> list[int]:
    """Mark the first unfinished job of each key ready; return the ids that became ready."""
    if not keys:
        return []
    heads = (select(func.min(jobs.c.id)).where(jobs.c.queue == queue, one_of(conn, jobs.c.ordering_key, keys),
                                               jobs.c.state.in_(fixed_list(UNFINISHED)))
             .group_by(jobs.c.ordering_key))
    return list(conn.execute(
        update(jobs).where(jobs.c.id.in_(heads.scalar_subquery()), jobs.c.state == fixed(PENDING), ~jobs.c.ready)
        .values(ready=True).returning(jobs.c.id)
    ).scalars())


@dataclass(frozen=True)
class Claim:
    """A batch of jobs taken for one attempt each; lease_end identifies this claim in the updates after."""

    jobs: list[RowMapping]
    lease_end: datetime


def claim_heads(conn: Connection, queue: str, *, now: datetime, lease: float, limit: int,
                early: bool = False) -> Claim:
    """Take up to `limit` due ready jobs of a queue: at most one per ordering key, oldest due first.

    `early`: once the first is due, the batch is filled with the ready jobs due next, before their time (archive
    packages waiting for their batch, and the retries of a batch that failed together, go as one batch).
    On PostgreSQL several workers claim side by side (SKIP LOCKED) without ever taking the same job.
    """
    lease_end = now + timedelta(seconds=lease)
    if conn.dialect.name == "postgresql":
        return _claim_in_one_statement(conn, queue=queue, now=now, lease_end=lease_end, limit=limit, early=early)
    heads = select(jobs.c.id, jobs.c.next_attempt_at).where(jobs.c.queue == queue, jobs.c.state == fixed(PENDING),
                                                            jobs.c.ready)
    due = (heads if early else heads.where(jobs.c.next_attempt_at <= now)) \
        .order_by(jobs.c.next_attempt_at, jobs.c.id).limit(limit)
    found = conn.execute(due).all()
    ids = [row.id for row in found] if found and found[0].next_attempt_at <= now else []
    if not ids:
        return Claim([], lease_end)
    rows = conn.execute(
        update(jobs).where(one_of(conn, jobs.c.id, ids), jobs.c.state == fixed(PENDING))
        .values(state=IN_FLIGHT, attempts=jobs.c.attempts + 1, locked_until=lease_end, updated_at=now)
        .returning(jobs)
    ).mappings().all()
    return Claim(sorted(rows, key=lambda r: r["id"]), lease_end)


def _claim_in_one_statement(conn: Connection, *, queue: str, now: datetime, lease_end: datetime, limit: int,
                            early: bool) -> Claim:
    """PostgreSQL: find and take the batch in one UPDATE (its rows locked by the CTE, SKIP LOCKED), atomic without
    a transaction around it (database.one_statement): one round trip where a SELECT, an UPDATE, BEGIN and COMMIT
    were four. The statement is written once (built per call, SQLAlchemy's construction and cache key cost more
    than the claim itself at a quiet rate: docs/performance.md)."""
    rows = conn.execute(_CLAIM[early], {"queue": queue, "now": now, "lease_end": lease_end, "limit": limit}
                        ).mappings().all()
    return Claim(sorted(rows, key=lambda r: r["id"]), lease_end)


def _claim_sql(early: bool) -> TextualSelect:
    # `early`: the batch is filled with the ready jobs due next, and goes once its first job is due. The UPDATE finds
    # its rows by id: with `jobs.state = 'pending'` in reach of an index, the generic plan read every pending job's
    # entry in ix_jobs_state_next (the waiting ones too) for each claim (auto_explain at 40/s: 162 entries a claim).
    first_due = " AND (SELECT min(next_attempt_at) FROM heads) <= :now"
    return text(f"""
WITH heads AS (
    SELECT id, next_attempt_at FROM jobs
    WHERE queue = :queue AND state = '{PENDING}' AND ready{"" if early else " AND next_attempt_at <= :now"}
    ORDER BY next_attempt_at, id LIMIT :limit FOR UPDATE SKIP LOCKED)
UPDATE jobs SET state = '{IN_FLIGHT}', attempts = jobs.attempts + 1, locked_until = :lease_end, updated_at = :now
FROM heads WHERE jobs.id = heads.id AND (jobs.state = '{PENDING}') IS TRUE{first_due if early else ""}
RETURNING {", ".join(f"jobs.{c.name}" for c in jobs.c)}""").columns(*jobs.c)


_CLAIM = {early: _claim_sql(early) for early in (False, True)}


def _ours(claim_end: datetime):  # noqa: ANN202 - a SQL condition
    # Our claim still holds: a worker whose lease ran out must not overwrite the next holder's record.
    return and_(jobs.c.state == IN_FLIGHT, jobs.c.locked_until == claim_end)


@dataclass(frozen=True)
class Finished:
    done: list[int]  # the claimed jobs marked done (a job whose claim was lost is not among them)
    promoted: list[int]  # the jobs that now head their keys: nobody publishes for them, the finisher drains on
    audited: bool = False  # the audit records given were written with them (every job was done)


def finish(conn: Connection, claimed: list[RowMapping], claim_end: datetime, *, now: datetime,
           audit: list[dict[str, Any]] | None = None) -> Finished:
    """Mark claimed jobs done and make the next job of each of their keys ready. `audit`: the records of these
    jobs done, written in the same statement if every one of them was (PostgreSQL); else not at all, and the
    caller writes what did happen (`audited` says which)."""
    if not claimed:
        return Finished([], [])
    queue = claimed[0]["queue"]
    keys = [j["ordering_key"] for j in claimed]
    lock_keys(conn, queue, keys)
    ids = [j["id"] for j in claimed]
    if conn.dialect.name == "postgresql":
        finished = Finished([], [], audited=bool(audit))
        params = {"ids": ids, "queue": queue, "claim_end": claim_end, "now": now}
        if audit:
            params.update(audit=json.dumps(audit, default=json_value), expected=len(ids))
        for was_done, job_id in conn.execute(_FINISH_AUDITED if audit else _FINISH, params):
            (finished.done if was_done else finished.promoted).append(job_id)
        return replace(finished, audited=False) if audit and len(finished.done) < len(ids) else finished
    done = conn.execute(update(jobs).where(one_of(conn, jobs.c.id, ids), _ours(claim_end)).values(
        state=DONE, locked_until=None, finished_at=now, updated_at=now, last_error=None,
    ).returning(jobs.c.id, jobs.c.ordering_key)).all()
    promoted = _promote(conn, queue, [key for _, key in done])
    return Finished([job_id for job_id, _ in done], promoted)


# PostgreSQL: finish() in one statement, the keys' locks taken before. The jobs done and the next job of each of their
# keys made ready: the promotion sees the table as it was before the statement, so the jobs just done are left out
# of the unfinished by name. Written so that its plan does not turn on estimates (psycopg prepares it; PostgreSQL may
# then plan it once for any ids): the jobs done found by primary key, the state test kept out of any index's reach
# (`IS TRUE`), and each key's next job by a look-up of its own in the index of unfinished jobs. With `state =
# 'in_flight'` in reach, the plan read every in-flight job's entry in ix_jobs_state_next and its row for each batch;
# with the keys as an array, every unfinished job of the queue in ix_jobs_unfinished (docs/performance.md).
_FINISH_CTES = f"""
WITH done AS (
    UPDATE jobs SET state = '{DONE}', locked_until = NULL, finished_at = :now, updated_at = :now, last_error = NULL
    WHERE id = ANY(CAST(:ids AS bigint[])) AND (state = '{IN_FLIGHT}') IS TRUE AND locked_until = :claim_end
    RETURNING id, ordering_key),
heads AS (
    SELECT (SELECT min(j.id) FROM jobs AS j
            WHERE j.queue = :queue AND j.ordering_key = k.ordering_key AND j.id NOT IN (SELECT id FROM done)
              AND j.state IN ({", ".join(f"'{state}'" for state in UNFINISHED)})) AS id
    FROM (SELECT DISTINCT ordering_key FROM done) AS k),
promoted AS (
    UPDATE jobs SET ready = true FROM heads
    WHERE jobs.id = heads.id AND (jobs.state = '{PENDING}') IS TRUE AND NOT jobs.ready
    RETURNING jobs.id)"""
_FINISH = text(_FINISH_CTES + "\nSELECT true, id FROM done UNION ALL SELECT false, id FROM promoted")
# The same, with the audit records of the jobs done (runner._calls_made), written only if every job given was: the
# records name them all, so a claim lost meanwhile (the sweeper handed a job on) leaves the runner to write the
# records of what did happen. One statement fewer per batch than recording them after it.
_FINISH_AUDITED = text(_FINISH_CTES + """,
audited AS (
    INSERT INTO audit_log (at, actor, action, subject, detail)
    SELECT r.at, r.actor, r.action, r.subject, r.detail
    FROM json_populate_recordset(NULL::audit_log, CAST(:audit AS json)) AS r
    WHERE (SELECT count(*) FROM done) = :expected)
SELECT true, id FROM done UNION ALL SELECT false, id FROM promoted""")


def complete(conn: Connection, claimed: list[RowMapping], claim_end: datetime, *, now: datetime) -> list[int]:
    """finish(), answering only the ids done."""
    return finish(conn, claimed, claim_end, now=now).done


def retry_later(conn: Connection, job_id: int, claim_end: datetime, *, now: datetime, at: datetime,
                error: str, refund: bool = False) -> bool:
    """Back to pending until `at`; `refund` gives back the attempt the claim took."""
    attempts = jobs.c.attempts - 1 if refund else jobs.c.attempts
    return conn.execute(update(jobs).where(jobs.c.id == job_id, _ours(claim_end)).values(
        state=PENDING, locked_until=None, next_attempt_at=at, updated_at=now, last_error=error[:4000],
        attempts=attempts,
    )).rowcount == 1


def bury(conn: Connection, job_id: int, claim_end: datetime, *, now: datetime, error: str) -> bool:
    return conn.execute(update(jobs).where(jobs.c.id == job_id, _ours(claim_end)).values(
        state=DEAD, locked_until=None, finished_at=now, updated_at=now, last_error=error[:4000],
    )).rowcount == 1


def _expired(now: datetime) -> ColumnElement[bool]:
    return and_(jobs.c.state == fixed(IN_FLIGHT), jobs.c.locked_until < now)


def _due_unpublished(now: datetime, republish_after: float) -> ColumnElement[bool]:
    """Due ready jobs that the broker never got, whose retry is due, or whose message seems lost."""
    stale = now - timedelta(seconds=republish_after)
    return and_(jobs.c.state == fixed(PENDING), jobs.c.ready, jobs.c.next_attempt_at <= now,
                or_(jobs.c.published_at.is_(None), jobs.c.published_at < jobs.c.next_attempt_at,
                    jobs.c.published_at < stale))


def sweep_pending(now: datetime, republish_after: float) -> ColumnElement[bool]:
    """Whether a sweep has anything to do (an expired lease, a job to publish): the sweeper asks first.

    The job to publish is looked for as the first in due order, not with EXISTS: PostgreSQL expected a good share
    of the pending jobs to qualify and planned EXISTS as a sequential scan to stop at the first; they are rare,
    so it read the whole table, finished jobs and all, every second (11 ms at 47,000 jobs). In due order it walks
    ix_jobs_state_next through the pending jobs alone."""
    first_to_publish = (select(jobs.c.id).where(_due_unpublished(now, republish_after))
                        .order_by(jobs.c.next_attempt_at).limit(1).scalar_subquery())
    return or_(exists().where(_expired(now)), first_to_publish.is_not(None))


def recover_expired_leases(conn: Connection, *, now: datetime) -> list[RowMapping]:
    """In-flight jobs whose worker vanished: back to pending, or dead once out of attempts.

    Returns the jobs that became dead letters (their kinds may want to react). On PostgreSQL a job whose row is
    locked is left for the next sweep: its lock may be a lost host's session's, held until the server ends it
    (database.idle_in_transaction_timeout_seconds), and the sweep must not wait behind it (issue 26)."""
    expired = _expired(now)
    if conn.dialect.name == "postgresql":
        free = select(jobs.c.id).where(expired).with_for_update(skip_locked=True).scalar_subquery()
        expired = and_(expired, jobs.c.id.in_(free))
    dead = conn.execute(update(jobs).where(expired, jobs.c.attempts >= jobs.c.max_attempts).values(
        state=DEAD, locked_until=None, finished_at=now, updated_at=now,
        last_error=func.coalesce(jobs.c.last_error, "") + " [lease expired on the last attempt]",
    ).returning(jobs)).mappings().all()
    conn.execute(update(jobs).where(expired).values(
        state=PENDING, locked_until=None, published_at=None, next_attempt_at=now, updated_at=now,
    ))
    return list(dead)


def due_backlog(conn: Connection, *, now: datetime, besides: list[str], limit: int) -> int:
    """How many ready jobs of queues other than `besides` are due and unclaimed, counted up to `limit`: work
    waiting for a worker, which background queues yield to."""
    waiting = (select(jobs.c.id).where(jobs.c.state == fixed(PENDING), jobs.c.ready, jobs.c.next_attempt_at <= now,
                                       jobs.c.queue.not_in(besides)).limit(limit).subquery())
    return conn.execute(select(func.count()).select_from(waiting)).scalar_one()


def oldest_due(conn: Connection, queues: list[str], *, now: datetime) -> datetime | None:
    """When the longest-waiting due ready job of these queues became due."""
    return conn.execute(select(func.min(jobs.c.next_attempt_at)).where(
        jobs.c.queue.in_(queues), jobs.c.state == fixed(PENDING), jobs.c.ready,
        jobs.c.next_attempt_at <= now)).scalar_one()


def take_due_for_publish(conn: Connection, *, now: datetime, republish_after: float,
                         limit: int = 500) -> list[tuple[int, str]]:
    """Due ready jobs that the broker never got, whose retry is due, or whose message seems lost. Oldest due first:
    ordered by id, PostgreSQL walked the primary key through every job ever made to find the few (13 ms at 47,000
    jobs, 20 ms in the bench's top level); in due order it reads the pending jobs alone."""
    query = (select(jobs.c.id, jobs.c.queue).where(_due_unpublished(now, republish_after))
             .order_by(jobs.c.next_attempt_at, jobs.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # several sweepers share the work
    rows = [(r.id, r.queue) for r in conn.execute(query)]
    if rows:
        conn.execute(update(jobs).where(jobs.c.id.in_([r[0] for r in rows])).values(published_at=now))
    return rows


def repair_ready(conn: Connection) -> list[int]:
    """Safety net: pending jobs that head their key but were never marked ready. Finds none unless
    something bypassed enqueue/complete (say a hand edit in the database); costs a scan of the waiting."""
    prior = jobs.alias("prior")
    heads = select(jobs.c.id).where(jobs.c.state == PENDING, ~jobs.c.ready, ~exists().where(
        prior.c.queue == jobs.c.queue, prior.c.ordering_key == jobs.c.ordering_key, prior.c.id < jobs.c.id,
        prior.c.state.in_(UNFINISHED)))
    ids = list(conn.execute(heads).scalars())
    if ids:
        conn.execute(update(jobs).where(jobs.c.id.in_(ids)).values(ready=True, published_at=None))
    return ids


def get(conn: Connection, job_id: int) -> RowMapping | None:
    return conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()


def list_by_state(conn: Connection, state: str, *, queue: str | None = None, limit: int = 100,
                  ordering_key: str | None = None, kind: str | None = None) -> list[RowMapping]:
    query = select(jobs).where(jobs.c.state == state)
    if queue:
        query = query.where(jobs.c.queue == queue)
    if kind:
        query = query.where(jobs.c.kind == kind)
    if ordering_key:
        query = query.where(jobs.c.ordering_key == ordering_key)
    return list(conn.execute(query.order_by(jobs.c.id).limit(limit)).mappings())


def revive(conn: Connection, job_id: int, *, now: datetime) -> RowMapping | None:
    """A dead letter gets a fresh set of attempts."""
    return conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == DEAD).values(
        state=PENDING, attempts=0, next_attempt_at=now, published_at=now, finished_at=None, updated_at=now,
    ).returning(jobs)).mappings().first()


def discard(conn: Connection, job_id: int, *, now: datetime) -> tuple[RowMapping | None, list[int]]:
    """Give up on a dead letter; return it and the job that now heads its key (to be published)."""
    job = get(conn, job_id)
    if job is None or job["state"] != DEAD:
        return None, []
    lock_keys(conn, job["queue"], [job["ordering_key"]])
    job = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == DEAD).values(
        state=DISCARDED, finished_at=now, updated_at=now,
    ).returning(jobs)).mappings().first()
    return job, (_promote(conn, job["queue"], [job["ordering_key"]]) if job else [])


def for_key(conn: Connection, ordering_key: str, limit: int = 200) -> list[RowMapping]:
    """Every job of one dossier (any queue, any state), oldest first."""
    return list(conn.execute(select(jobs).where(jobs.c.ordering_key == ordering_key).order_by(jobs.c.id)
                             .limit(limit)).mappings())


def delivered(conn: Connection, queue: str, ordering_key: str, kind: str, *, newest: bool = False,
              ) -> list[RowMapping]:
    """The jobs of one kind and key that were delivered (done), oldest first; `newest`: only the last one.
    Reconciliation reads what the gateway sent from them (ix_jobs_order: queue, key, id)."""
    query = select(jobs.c.id, jobs.c.payload).where(jobs.c.queue == queue, jobs.c.ordering_key == ordering_key,
                                                    jobs.c.kind == kind, jobs.c.state == fixed(DONE))
    query = query.order_by(jobs.c.id.desc()).limit(1) if newest else query.order_by(jobs.c.id)
    return list(conn.execute(query).mappings())


def of_key(conn: Connection, queue: str, ordering_key: str) -> list[RowMapping]:
    """Every job of one key in one queue but their payloads: state, readiness, id (ix_jobs_order)."""
    return list(conn.execute(select(jobs.c.id, jobs.c.kind, jobs.c.state, jobs.c.ready).where(
        jobs.c.queue == queue, jobs.c.ordering_key == ordering_key).order_by(jobs.c.id)).mappings())


def supersede(conn: Connection, job_ids: list[int], *, now: datetime, note: str) -> list[RowMapping]:
    """Retire unfinished jobs (dead letters, and the jobs waiting behind them) that a repair sends again in a new
    order: discarded, with `note` as their last error. The caller holds their key's lock; all or none."""
    if not job_ids:
        return []
    rows = conn.execute(update(jobs).where(jobs.c.id.in_(job_ids), or_(jobs.c.state == DEAD, and_(
        jobs.c.state == PENDING, ~jobs.c.ready))).values(
        state=DISCARDED, finished_at=now, updated_at=now, last_error=note[:4000],
    ).returning(jobs)).mappings().all()
    if len(rows) != len(job_ids):
        raise RuntimeError("a job to supersede moved on meanwhile")
    return sorted(rows, key=lambda r: r["id"])


def replace_payload(conn: Connection, job_id: int, payload: dict[str, Any]) -> None:
    """Data minimisation only: a job's dossier snapshot loses the attachment bodies (no partner is sent them)."""
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(payload=payload))


def counts(conn: Connection, *, unfinished_only: bool = False) -> list[RowMapping]:
    """(queue, state, count). Counting every state reads the whole history of finished jobs, which only grows;
    `unfinished_only` counts the pending, in-flight and dead ones through ix_jobs_unfinished (the states written
    into the statement, so that PostgreSQL can use the partial index): a cost that follows the backlog."""
    query = select(jobs.c.queue, jobs.c.state, func.count().label("count"))
    if unfinished_only:
        query = query.where(jobs.c.state.in_(fixed_list(UNFINISHED)))
    return list(conn.execute(query.group_by(jobs.c.queue, jobs.c.state).order_by(jobs.c.queue, jobs.c.state))
                .mappings())


# Rows changed since the last ANALYZE (PostgreSQL's own count) worth new statistics: a thousand, whatever the
# table's size (a backlog of 15,000 built in seconds needs them at once; ANALYZE reads a bounded sample, so its
# cost does not grow with the table), and none on a quiet gateway.
_STATISTICS_STALE = literal_column("EXISTS (SELECT 1 FROM pg_stat_user_tables WHERE relname = 'jobs' "
                                   "AND n_mod_since_analyze >= 1000)", Boolean)


def statistics_stale(conn: Connection) -> ColumnElement[bool]:
    """Whether enough of the jobs table changed for refresh_statistics to be worth its scan (PostgreSQL)."""
    return _STATISTICS_STALE if conn.dialect.name == "postgresql" else false()


def refresh_statistics(conn: Connection) -> None:
    """Fresh planner statistics for the jobs table (PostgreSQL). Autovacuum analyzes at most once a minute and
    only after a tenth of the table changed, so a backlog that builds up in seconds (the morning after a quiet
    night) is planned as the empty queue the last statistics saw: the per-key look-ups then read the whole
    backlog through the state index, ~10-20 ms each with 15,000 waiting (bench/load.py, steps only, 1,000/s).

    These plans need the table's size and the share of each state, not fine histograms: a sample of 3,000 rows
    (statistics target 10) instead of 30,000 makes the ANALYZE about nine times cheaper (143 ms each, every 15 s,
    at the bench's top level; docs/performance.md, tenth round). Autovacuum's own ANALYZE keeps the full target."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL default_statistics_target = 10"))  # this transaction only
        conn.execute(text("ANALYZE (SKIP_LOCKED) jobs"))  # a worker's ANALYZE in progress is enough
