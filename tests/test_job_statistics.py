"""The jobs table's planner statistics stay fresh: a backlog that builds up between two autovacuum runs must not
be planned as the empty queue the last statistics saw (each per-key look-up would read the whole backlog)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gateway.store import outbox

BACKLOG = """
insert into jobs (queue, kind, ordering_key, payload, state, ready, attempts, max_attempts, next_attempt_at,
                  created_at, updated_at)
select 'national_portal', 'progress', 'K' || (g % 500), '{}', 'pending', g <= 500, 0, 8, now(), now(), now()
from generate_series(1, 10000) g
"""
WANTED = [f"K{i}" for i in range(50)]


def _plan(conn) -> str:  # noqa: ANN001
    """The plan of the look-up every step request and every finished batch makes (outbox.keys_with_unfinished)."""
    statement = outbox.keys_with_unfinished_query(conn, "national_portal", WANTED)
    compiled = statement.compile(conn, compile_kwargs={"literal_binds": True})
    return "\n".join(r[0] for r in conn.execute(text(f"explain {compiled}")))


def test_refreshed_statistics_plan_the_per_key_look_up_by_key_not_by_scanning_the_backlog(engine) -> None:  # noqa: ANN001
    if engine.dialect.name != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's")
    with engine.begin() as conn:
        conn.execute(text("alter table jobs set (autovacuum_enabled = false)"))  # only our ANALYZE runs
        conn.execute(text("analyze jobs"))  # what the night left: an empty queue
        conn.execute(text(BACKLOG))  # the morning: 10,000 jobs waiting on 500 dossiers
    with engine.connect() as conn:
        stale = _plan(conn)
    with engine.begin() as conn:
        outbox.refresh_statistics(conn)
    with engine.connect() as conn:
        fresh = _plan(conn)
        assert sorted(outbox.keys_with_unfinished(conn, "national_portal", WANTED)) == sorted(WANTED)
    by_key = "Index Cond: (((queue)::text = 'national_portal'::text) AND ((ordering_key)::text = ANY"
    assert by_key not in stale, stale  # stale: the key is only a filter over every waiting job's entry
    assert by_key in fresh, fresh


def test_the_refresh_reads_a_small_sample(engine) -> None:  # noqa: ANN001
    """What the refresh is for needs the table's size and the states' shares: it samples 3,000 rows, not 30,000
    (about nine times cheaper at the bench's top level), so its histograms have at most 11 bounds, not 101."""
    if engine.dialect.name != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's")
    with engine.begin() as conn:
        conn.execute(text("alter table jobs set (autovacuum_enabled = false)"))
        conn.execute(text(BACKLOG.replace("now(), now(), now()", "now() + g * interval '1 second', now(), now()")))
        outbox.refresh_statistics(conn)
    with engine.connect() as conn:
        bounds = conn.execute(text("select cardinality(histogram_bounds::text::text[]) from pg_stats "
                                   "where tablename = 'jobs' and attname = 'next_attempt_at'")).scalar_one()
        assert bounds is not None and bounds <= 11, bounds
        assert conn.execute(text("select reltuples from pg_class where relname = 'jobs'")).scalar_one() >= 10_000
        assert conn.execute(text("show default_statistics_target")).scalar_one() == "100"  # the others' target
