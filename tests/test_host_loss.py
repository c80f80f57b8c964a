"""A host lost mid-transaction (issue 26): its PostgreSQL session stays open, half-open TCP, inside a
transaction that holds row locks on jobs. On a database of the test's own (the `engine` fixture, both stacks;
the embedded stack has no network session to lose and skips, saying so). The multi-host version, with a real
partition: tests/test_hosts.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from gateway.config import DatabaseSettings
from gateway.store import outbox
from gateway.store.database import make_engine
from gateway.store.tables import jobs
from tests.conftest import wait_for

Q = "national_portal"


def _postgres_only(engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite is one host's file: no session over a network that a lost host could leave open")


def _expired_job(engine, key: str) -> int:
    """A job claimed by a worker whose lease has run out."""
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    with engine.begin() as conn:
        job_id, _ = outbox.enqueue(conn, outbox.NewJob(Q, "k", key, {}), now=long_ago, max_attempts=5)
        claim = outbox.claim_heads(conn, Q, now=long_ago, lease=30, limit=1)
    assert [j["id"] for j in claim.jobs] == [job_id]
    return job_id


def _vanished_holding(url: str, job_id: int, idle_timeout: float):  # noqa: ANN202
    """A worker's connection (the gateway's own engine) inside a transaction that locked the job, as finish() does,
    whose host then vanished: nothing more is ever sent on it."""
    vanished = make_engine(url, pool_size=1, settings=DatabaseSettings(
        url=url, idle_in_transaction_timeout_seconds=idle_timeout))
    conn = vanished.connect()
    conn.begin()
    conn.execute(select(jobs.c.id).where(jobs.c.id == job_id).with_for_update())
    return vanished, conn


def _sweep(engine) -> None:
    """The sweeper's recovery, as Worker.sweep_once runs it; lock_timeout only keeps a blocked sweep from
    hanging the test (a real sweeper would wait as long as the lock is held)."""
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '3s'"))
        outbox.recover_expired_leases(conn, now=datetime.now(UTC))


def _state(engine, job_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(select(jobs.c.state).where(jobs.c.id == job_id)).scalar_one()


def test_a_session_a_lost_host_left_in_a_transaction_lets_go_of_its_jobs(engine):
    _postgres_only(engine)
    url = engine.url.render_as_string(hide_password=False)
    job_id = _expired_job(engine, "A")
    vanished, conn = _vanished_holding(url, job_id, idle_timeout=1)
    try:
        def recovered() -> bool:
            try:
                _sweep(engine)
            except Exception:  # noqa: BLE001 - lock_timeout: still held by the lost session
                return False
            return _state(engine, job_id) == "pending"

        # Without the server's idle_in_transaction_session_timeout the lock is held until PostgreSQL learns
        # the client is gone: hours of TCP keepalive defaults, and the job (and its key) wait as long.
        wait_for(recovered, timeout=20, interval=0.5, what="the lost session's job back to pending")
    finally:
        conn.invalidate()
        vanished.dispose()


def test_a_sweep_is_not_held_up_by_a_lost_sessions_lock(engine):
    _postgres_only(engine)
    url = engine.url.render_as_string(hide_password=False)
    held = _expired_job(engine, "A")
    free = _expired_job(engine, "B")
    vanished, conn = _vanished_holding(url, held, idle_timeout=600)
    try:
        _sweep(engine)  # before: waited on the lost session's lock, and recovered neither
        assert _state(engine, free) == "pending"
        assert _state(engine, held) == "in_flight"  # its turn comes when the lost session is ended
    finally:
        conn.invalidate()
        vanished.dispose()


def test_a_request_behind_a_frozen_hosts_lock_gives_up_instead_of_holding_a_thread(engine):
    """A frozen API host (SIGSTOP) keeps its transaction's row locks; a healthy host's request behind them must
    fail soon (the API answers 503, the caller sends again), not hold one of its few threads for as long as the
    freeze lasts: with all of them waiting, its /healthz went unanswered and the balancer took it out too."""
    _postgres_only(engine)
    url = engine.url.render_as_string(hide_password=False)
    job_id = _expired_job(engine, "A")
    frozen, conn = _vanished_holding(url, job_id, idle_timeout=600)
    healthy = make_engine(url, pool_size=1, settings=DatabaseSettings(url=url, lock_timeout_seconds=1))
    try:
        with pytest.raises(OperationalError, match="due to lock timeout"), healthy.begin() as mine:
            # Without lock_timeout this waits until the frozen host resumes or its session is ended.
            mine.execute(text("SET LOCAL statement_timeout = '20s'"))  # only so that the test ends if it waits
            mine.execute(select(jobs.c.id).where(jobs.c.id == job_id).with_for_update())
    finally:
        healthy.dispose()
        conn.invalidate()
        frozen.dispose()
