"""Operators' hands on dead letters: list, retry, discard. Used by /ops and by the CLI."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from sqlalchemy import RowMapping

from gateway.services.errors import NotFound
from gateway.services.unit_of_work import Context
from gateway.store import audit, outbox, server_clock, tallies
from gateway.store.tables import jobs


def list_dead(ctx: Context, *, queue: str | None = None, kind: str | None = None,
              limit: int = 100) -> list[RowMapping]:
    with ctx.engine.connect() as conn:
        return outbox.list_by_state(conn, outbox.DEAD, queue=queue, kind=kind, limit=limit)


def count_by_kind(ctx: Context) -> dict[tuple[str, str], int]:
    """How many dead letters per (queue, kind), counted in the database (a listing shows only the first few)."""
    with ctx.engine.connect() as conn:
        rows = tallies.count_by(conn, jobs, "queue", "kind", where=jobs.c.state == outbox.DEAD)
    return {(r["queue"], r["kind"]): r["count"] for r in rows}


def retry(ctx: Context, job_id: int, *, actor: str) -> RowMapping:
    now = server_clock.now()
    with ctx.engine.begin() as conn:
        job = outbox.revive(conn, job_id, now=now)
        if job is None:
            raise NotFound(f"no dead letter {job_id}")
        audit.record(conn, actor=actor, action="dead_letter.retry", subject=f"job:{job_id}", at=now,
                     detail={"kind": job["kind"], "last_error": job["last_error"]})
    ctx.publish_after_commit([(job_id, job["queue"])])
    return job


def discard(ctx: Context, job_id: int, *, actor: str) -> RowMapping:
    """Give up on a dead letter; the jobs queued behind it (same dossier) may then go ahead."""
    now = server_clock.now()
    with ctx.engine.begin() as conn:
        job, ready = outbox.discard(conn, job_id, now=now)
        if job is None:
            raise NotFound(f"no dead letter {job_id}")
        audit.record(conn, actor=actor, action="dead_letter.discard", subject=f"job:{job_id}", at=now,
                     detail={"kind": job["kind"], "last_error": job["last_error"]})
    ctx.publish_after_commit([(nxt, job["queue"]) for nxt in ready])
    return job


Action = Literal["retry", "discard"]


def settle_each(ctx: Context, action: Action, job_ids: Iterable[int], *, actor: str) -> int:
    """Retry or discard each of these dead letters, one transaction each (an operator's bulk action: a
    failure half-way keeps what was done); those someone else settled meanwhile are skipped. How many."""
    act = retry if action == "retry" else discard
    done = 0
    for job_id in job_ids:
        try:
            act(ctx, job_id, actor=actor)
            done += 1
        except NotFound:  # someone else got to it first
            pass
    return done
