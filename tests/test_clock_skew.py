"""A host whose clock is off (issue 26): leases and schedules are the database's time, not the host's.

A worker process runs with its wall clock 90 s ahead (bench/_skewed.py: faketime hangs Python's threads here),
against a database of the test's own (the `engine` fixture). Its sweeper must not call another worker's lease
expired 90 s early (the job would run twice, side by side), and the time it schedules by must be the
database's. PostgreSQL only: the embedded stack is one host's SQLite file, with one clock, and skips saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from gateway.store import outbox
from gateway.store.tables import jobs

Q = "national_portal"
SKEWED = Path(__file__).resolve().parent.parent / "bench" / "_skewed.py"
SKEW = 90

# Builds the worker exactly as `gateway worker` does, sweeps once, and says what it took the time to be.
SWEEP_ONCE = """
import json
from gateway.bootstrap import bootstrap, build_worker
from gateway.store import server_clock
gateway = bootstrap()
worker = build_worker(gateway)
worker.sweep_once()
print(json.dumps({"gateway_now": server_clock.now().isoformat()}))
"""


def _skewed_host(engine, tmp_path) -> dict:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite is one host's file: one clock, nothing to disagree with")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
           "GATEWAY_DATABASE__URL": engine.url.render_as_string(hide_password=False),
           "GATEWAY_BROKER__URL": "filesystem://", "GATEWAY_BROKER__DATA_FOLDER": str(tmp_path / "broker"),
           "GATEWAY_ARCHIVE__FOLDER": str(tmp_path / "archive"), "GATEWAY_LOG_LEVEL": "warning"}
    done = subprocess.run([sys.executable, str(SKEWED), f"+{SKEW}", "-c", SWEEP_ONCE], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_90_s_ahead_leaves_another_workers_lease_alone(engine, tmp_path):
    with engine.begin() as conn:  # a job another worker (this process, on the true clock) holds for 30 s
        job_id, _ = outbox.enqueue(conn, outbox.NewJob(Q, "k", "A", {}), now=datetime.now(UTC), max_attempts=5)
        claim = outbox.claim_heads(conn, Q, now=datetime.now(UTC), lease=30, limit=1)
    assert [j["id"] for j in claim.jobs] == [job_id]
    _skewed_host(engine, tmp_path)
    with engine.connect() as conn:
        state, until = conn.execute(select(jobs.c.state, jobs.c.locked_until).where(jobs.c.id == job_id)).one()
    # Before: the skewed sweeper saw the lease 60 s past its end, put the job back and it ran a second time.
    assert (state, until) == ("in_flight", claim.lease_end)
    with engine.begin() as conn:  # and the holder's outcome is still its to record
        assert outbox.complete(conn, claim.jobs, claim.lease_end, now=datetime.now(UTC)) == [job_id]


def test_a_host_90_s_ahead_keeps_the_databases_time(engine, tmp_path):
    said = _skewed_host(engine, tmp_path)
    with engine.connect() as conn:
        database_now = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    gateway_now = datetime.fromisoformat(said["gateway_now"])
    # The process's own clock was 90 s ahead; the time it schedules by is the database's (a few seconds of
    # process start apart at most, never the skew).
    assert abs((database_now - gateway_now).total_seconds()) < SKEW / 3


def test_a_closed_gateways_database_is_not_read_for_the_time_again(engine, tmp_path, monkeypatch):
    """The keeper reads the database's clock every minute; once the gateway that gave it the engine is closed (its
    database perhaps dropped) it stops, instead of warning "could not read the database's clock" from then on."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite is one host's file: no database clock to keep in step with")
    from gateway.bootstrap import bootstrap
    from gateway.config import load_settings
    from gateway.store import server_clock

    for key, value in {"GATEWAY_DATABASE__URL": engine.url.render_as_string(hide_password=False),
                       "GATEWAY_BROKER__URL": "filesystem://", "GATEWAY_BROKER__DATA_FOLDER": str(tmp_path / "broker"),
                       "GATEWAY_ARCHIVE__FOLDER": str(tmp_path / "archive")}.items():
        monkeypatch.setenv(key, value)
    gateway = bootstrap(load_settings())
    assert server_clock._engine is gateway.engine
    gateway.close()
    assert server_clock._engine is None
