"""A worker whose database went out of reach while it ran a batch (a cut link, a database restart): the partner
calls were made, their outcomes could not be written. The worker keeps them and writes them once the database
answers, while its claim lasts, instead of leaving the jobs to sit out their lease (a minute; five for an archive
batch: the multi-host test caught one, 34 packages, still waiting a minute after the link came back). Between the
runner and PostgreSQL, a relay of the test's own that is cut (connections reset, new ones refused) and mended.
The embedded stack skips: its database is a file on the same host."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gateway.adapters.base import RetryableError
from gateway.config import JobSettings
from gateway.jobs.runner import JobRunner
from gateway.store import outbox
from gateway.store.database import make_engine
from gateway.store.tables import jobs
from tests.tcp_relay import Relay

Q = "national_portal"
LEASE = 30.0


@pytest.fixture
def link(engine):  # noqa: ANN001, ANN201
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite is a file on this host: no link to the database to cut")
    relay = Relay((engine.url.host or "127.0.0.1", engine.url.port or 5432))
    yield relay
    relay.close()


def _runner_across(link: Relay, engine, handler) -> JobRunner:  # noqa: ANN001
    url = engine.url.set(host="127.0.0.1", port=link.port).render_as_string(hide_password=False)
    return JobRunner(make_engine(url, pool_size=2), {"k": handler}, JobSettings(lease_seconds=LEASE, batch_size=10))


def _queue(engine, keys: list[str]) -> list[int]:  # noqa: ANN001
    with engine.begin() as conn:
        return [outbox.enqueue(conn, outbox.NewJob(Q, "k", key, {"n": n}), now=datetime.now(UTC), max_attempts=5)[0]
                for n, key in enumerate(keys)]


def _jobs(engine, ids: list[int]) -> list[tuple[str, bool, str | None]]:  # noqa: ANN001
    with engine.connect() as conn:
        rows = conn.execute(select(jobs.c.id, jobs.c.state, jobs.c.ready, jobs.c.last_error)
                            .where(jobs.c.id.in_(ids))).all()
    by_id = {r.id: (r.state, r.ready, r.last_error) for r in rows}
    return [by_id[i] for i in ids]


def _partner_calls_then_the_link_goes(link: Relay):  # noqa: ANN202
    """The partner took the first and third job, asked to try the second later; then the database link went."""
    def handler(payloads: list[dict]) -> list[Exception | None]:
        link.cut()
        return [RetryableError("partner busy") if p["n"] == 1 else None for p in payloads]
    return handler


def test_outcomes_that_could_not_be_written_are_written_once_the_database_answers(engine, link):
    a, b, c, after_a = _queue(engine, ["a", "b", "c", "a"])
    runner = _runner_across(link, engine, _partner_calls_then_the_link_goes(link))

    with pytest.raises(OperationalError):
        runner.run_batch(Q)
    assert [state for state, _, _ in _jobs(engine, [a, b, c])] == ["in_flight"] * 3

    with pytest.raises(OperationalError):  # still cut: kept for the next try
        runner.record_late()
    link.mend()
    assert runner.record_late() == 3

    assert _jobs(engine, [a, b, c, after_a]) == [
        ("done", True, None), ("pending", True, "RetryableError: partner busy"), ("done", True, None),
        ("pending", True, None)]  # the job behind a now heads its key, as after a batch written at once
    assert runner.record_late() == 0  # written once


def test_late_outcomes_leave_jobs_another_worker_took_over_alone(engine, link):
    a, b = _queue(engine, ["a", "b"])
    runner = _runner_across(link, engine, _partner_calls_then_the_link_goes(link))
    with pytest.raises(OperationalError):
        runner.run_batch(Q)

    # Meanwhile the claim ran out (the sweeper's clock past it) and another worker took both jobs.
    later = datetime.now(UTC) + timedelta(seconds=LEASE + 1)
    with engine.begin() as conn:
        outbox.recover_expired_leases(conn, now=later)
        taken = outbox.claim_heads(conn, Q, now=later, lease=LEASE, limit=10)
    assert sorted(j["id"] for j in taken.jobs) == [a, b]

    link.mend()
    assert runner.record_late() == 0  # lost: the other worker's claim holds
    assert [state for state, _, _ in _jobs(engine, [a, b])] == ["in_flight"] * 2
    with engine.begin() as conn:
        assert outbox.complete(conn, taken.jobs, taken.lease_end, now=later) == [a, b]
