"""Periodic work scales with change, not with time: a worker's tick with nothing to do asks one question and runs
no task; as soon as there is something (an audit record to seal, a lease run out, a message lost), the task runs.
On a database of the test's own (the `engine` fixture: no worker touches it), on both stacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select, text, update

from gateway.jobs.worker import PeriodicTask, Worker
from gateway.services.audit import chain
from gateway.store import audit, outbox
from gateway.store.tables import audit_log, jobs
from tests.conftest import wait_for

KEY = b"test-key"
BACKLOG = """
insert into jobs (queue, kind, ordering_key, payload, state, ready, attempts, max_attempts, next_attempt_at,
                  created_at, updated_at)
select 'q', 'k', 'K' || g, '{}', 'done', false, 1, 3, now(), now(), now() from generate_series(1, 1000) g
"""


def _worker(gw, engine, ran: list[str]) -> Worker:  # noqa: ANN001
    def sealing() -> None:
        ran.append("audit sealing")
        chain.seal_all(engine, KEY)

    settings = gw.gateway.settings.jobs.model_copy(update={"sweep_interval_seconds": 1.0,
                                                           "republish_after_seconds": 60.0})
    worker = Worker(engine, gw.gateway.broker, gw.gateway.runner, settings, [],
                    [PeriodicTask("audit sealing", 1.0, sealing, lambda _conn, _now: audit.unsealed_pending())])
    sweep = worker.periodic[0]
    sweep.run = lambda: ran.append("sweep")  # what it would do is the outbox's tests' business
    worker.periodic = [sweep, worker.periodic[-1]]  # the ready-flag repair runs unasked once a minute: not here
    return worker


def _tick(worker: Worker, engine) -> list[str]:  # noqa: ANN001
    """One tick, every task due; the statements it sent (SQLite's BEGIN apart)."""
    sent: list[str] = []

    def statement(_conn, _cursor, sql, *_rest) -> None:  # noqa: ANN001
        if not sql.startswith("BEGIN"):
            sent.append(sql)

    for task in worker.periodic:
        task.due = 0.0
    event.listen(engine, "before_cursor_execute", statement)
    try:
        worker.run_periodic()
    finally:
        event.remove(engine, "before_cursor_execute", statement)
    return sent


def test_a_tick_with_nothing_to_do_asks_once_and_runs_nothing(gw, engine) -> None:  # noqa: ANN001
    ran: list[str] = []
    worker = _worker(gw, engine, ran)
    sent = _tick(worker, engine)
    assert ran == [] and len(sent) == 1, sent


def test_work_to_do_runs_its_task_at_the_next_tick(gw, engine) -> None:  # noqa: ANN001
    ran: list[str] = []
    worker = _worker(gw, engine, ran)
    with engine.begin() as conn:
        audit.record(conn, actor="test", action="test.periodic", subject="periodic")
    _tick(worker, engine)
    assert ran == ["audit sealing"]
    with engine.connect() as conn:
        assert conn.execute(select(audit_log.c.seq).where(audit_log.c.subject == "periodic")).scalar_one() == 1

    ran.clear()  # sealed: nothing left
    assert _tick(worker, engine) and ran == []

    # A job whose lease ran out, and one whose wake-up never reached the broker: each is the sweep's.
    for late in (dict(state="in_flight", locked_until=datetime.now(UTC) - timedelta(seconds=1)),
                 dict(state="pending", published_at=None)):
        with engine.begin() as conn:
            job, _ = outbox.enqueue(conn, outbox.NewJob("q", "k", f"key-{late['state']}", {}),
                                    now=datetime.now(UTC), max_attempts=3)
            conn.execute(update(jobs).where(jobs.c.id == job).values(**late))
        _tick(worker, engine)
        assert ran == ["sweep"], late
        ran.clear()
        with engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job).values(state="done"))


def test_statistics_are_due_after_a_thousand_changed_jobs_and_not_before(engine) -> None:  # noqa: ANN001
    def stale() -> bool:
        with engine.connect() as conn:
            return bool(conn.execute(select(outbox.statistics_stale(conn))).scalar_one())

    if engine.dialect.name != "postgresql":
        assert not stale()  # SQLite has no planner statistics to refresh
        return
    with engine.begin() as conn:
        outbox.refresh_statistics(conn)
    assert not stale()
    with engine.begin() as conn:
        conn.execute(text(BACKLOG))
    wait_for(stale, 30, what="PostgreSQL to count the changed rows")  # each backend reports within seconds
    with engine.begin() as conn:
        outbox.refresh_statistics(conn)
    assert not stale()
