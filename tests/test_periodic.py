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


def test_the_workers_own_tasks_idle_ask_once_and_each_runs_once_it_has_work(gw, engine) -> None:  # noqa: ANN001
    """The tasks build_worker gives a worker, on a database of the test's own: the national portal's read-back scan
    and the archive's safety nets (retries, minimisation, renewals) are asked like the others, so an idle tick is
    one statement, and each runs as soon as its scan would find something."""
    from gateway.bootstrap import bootstrap, build_worker
    from gateway.store.tables import archive_packages, dossiers, portal_checks, webhook_cursor

    url = engine.url.render_as_string(hide_password=False)
    settings = gw.settings.model_copy(update={"database": gw.settings.database.model_copy(update={"url": url})})
    gateway = bootstrap(settings)
    try:
        ran: list[str] = []
        worker = build_worker(gateway)
        unasked = [task.name for task in worker.periodic if task.pending is None]
        assert {"portal reconciliation", "archive retries", "archive minimisation", "archive renewals"} <= {
            task.name for task in worker.periodic if task.pending is not None}
        for task in worker.periodic:
            task.run = lambda name=task.name: ran.append(name)

        def asked() -> list[str]:  # the tasks that ran besides those that always do
            ran.clear()
            _tick(worker, gateway.engine)
            return [name for name in ran if name not in unasked]

        with gateway.engine.begin() as conn:  # the webhook's cursor, as the first push leaves it
            conn.execute(webhook_cursor.insert().values(id=1, cursor=0, attempts=0, updated_at=datetime.now(UTC)))
        ran.clear()
        sent = _tick(worker, gateway.engine)
        assert ran == unasked and len(sent) == 1, sent

        now = datetime.now(UTC)
        with gateway.engine.begin() as conn:
            dossier_id = conn.execute(dossiers.insert().values(
                code="T-periodic", procedure_code="p", procedure_name="p", level="full", channel=1, source="test",
                status=2, applicant_name="a", id_number="001", fingerprint="f", data={}, received_at=now,
                last_seq=0, created_at=now, updated_at=now).returning(dossiers.c.id)).scalar_one()
            conn.execute(portal_checks.insert().values(dossier_id=dossier_id, dossier_code="T-periodic",
                                                       enrolled_at=now, next_check_at=now - timedelta(seconds=1),
                                                       checks=0))
        assert asked() == ["portal reconciliation"]
        with gateway.engine.begin() as conn:
            conn.execute(update(portal_checks).values(next_check_at=now + timedelta(hours=1)))
            conn.execute(archive_packages.insert().values(
                dossier_id=dossier_id, dossier_code="T-periodic", state="pending", final_status=10, final_at=now,
                attempts=0, version=0, timestamps=0, created_at=now, updated_at=now))
        assert asked() == ["archive retries"]
        long_ago = now - timedelta(days=settings.archive.minimise_after_days + 1)
        with gateway.engine.begin() as conn:  # sealed long ago, its bodies still held, its TSA good for years
            conn.execute(update(archive_packages).values(state="sealed", sealed_at=long_ago, verified_at=long_ago,
                                                         tsa_not_after=now + timedelta(days=3650)))
        assert asked() == ["archive minimisation"]
        with gateway.engine.begin() as conn:  # minimised; its TSA's certificate ends within the renewal margin
            conn.execute(update(archive_packages).values(minimised_at=now, tsa_not_after=now + timedelta(days=1)))
        assert asked() == ["archive renewals"]
        with gateway.engine.begin() as conn:
            conn.execute(update(archive_packages).values(tsa_not_after=now + timedelta(days=3650)))
        assert asked() == []
    finally:
        gateway.close()
