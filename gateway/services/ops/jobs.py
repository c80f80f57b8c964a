"""The jobs of the outbox as operators see them: counts by queue and state, the jobs in a state or of a dossier."""

from __future__ import annotations

from sqlalchemy import Engine, RowMapping

from gateway.services.unit_of_work import Context
from gateway.store import outbox

PENDING, IN_FLIGHT, DONE, DEAD, DISCARDED = outbox.PENDING, outbox.IN_FLIGHT, outbox.DONE, outbox.DEAD, outbox.DISCARDED
STATES = (PENDING, IN_FLIGHT, DONE, DEAD, DISCARDED)
UNFINISHED = (PENDING, IN_FLIGHT)


def counts(ctx: Context, *, unfinished_only: bool = False) -> list[RowMapping]:
    """(queue, state, count) for every queue and state that has jobs; with `unfinished_only`, for the pending,
    in-flight and dead ones alone, at a cost that follows the backlog rather than the history."""
    with ctx.engine.connect() as conn:
        return outbox.counts(conn, unfinished_only=unfinished_only)


def in_state(ctx: Context, state: str, *, queue: str | None = None, ordering_key: str | None = None,
             limit: int = 500) -> list[RowMapping]:
    """The jobs in one state, oldest first; `queue` and `ordering_key` (a dossier code) narrow the list."""
    with ctx.engine.connect() as conn:
        return outbox.list_by_state(conn, state, queue=queue, ordering_key=ordering_key, limit=limit)


def of_dossier(ctx: Context, code: str) -> list[RowMapping]:
    """Every job of one dossier (any queue, any state), oldest first."""
    with ctx.engine.connect() as conn:
        return outbox.for_key(conn, code)


def refresh_statistics(engine: Engine) -> None:
    """A worker's periodic task: fresh planner statistics for the jobs table (see outbox.refresh_statistics)."""
    with engine.begin() as conn:
        outbox.refresh_statistics(conn)
