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


def counted(conn) -> None:  # noqa: ANN001
    """What this session changes, in the statistics the refresh reads once it commits, not up to 10 s later."""
    conn.execute(text("select pg_stat_force_next_flush()"))


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
        counted(conn)
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
        counted(conn)
    with engine.begin() as conn:
        assert outbox.refresh_statistics(conn) == ["jobs"]
    with engine.connect() as conn:
        bounds = conn.execute(text("select cardinality(histogram_bounds::text::text[]) from pg_stats "
                                   "where tablename = 'jobs' and attname = 'next_attempt_at'")).scalar_one()
        assert bounds is not None and bounds <= 11, bounds
        assert conn.execute(text("select reltuples from pg_class where relname = 'jobs'")).scalar_one() >= 10_000
        assert conn.execute(text("show default_statistics_target")).scalar_one() == "100"  # the others' target


RECORDS = """
insert into audit_log (at, actor, action, subject, detail)
select now(), 'api', 'dossier.step', 'D-' || g, '{}' from generate_series(1, 20000) g
"""


def test_a_grown_table_is_planned_again_for_its_size(pg_engine) -> None:  # noqa: ANN001
    """A statement prepared while a new gateway's tables were small keeps its plan until the table's statistics
    change: the join of a batch with the audit log (the sealer's, each step request's with the dossiers) scanned the
    whole table long after it had grown (auto_explain in bench/load.py's levels). Once the table has grown past its
    size at the last ANALYZE, the refresh analyzes it, and the statement is planned again by index."""
    import psycopg

    url = pg_engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("analyze audit_log")  # what a new gateway's first statistics say: empty
        conn.execute("set plan_cache_mode = force_generic_plan")  # the plan a prepared statement keeps
        conn.execute("prepare batch(bigint[]) as update audit_log set hash = 'h' where id = any($1)")

        def plan() -> str:
            return "\n".join(r[0] for r in conn.execute("explain execute batch('{1,2,3}')"))

        assert "Seq Scan on audit_log" in plan()
        conn.execute(RECORDS)  # the table grows; the prepared plan does not know
        conn.execute("select pg_stat_force_next_flush()")
        assert "Seq Scan on audit_log" in plan()
        with pg_engine.begin() as gateway:
            assert "audit_log" in outbox.refresh_statistics(gateway)
        with pg_engine.begin() as gateway:
            assert outbox.refresh_statistics(gateway) == []  # nothing has grown since: nothing to do
        assert "Index Scan using audit_log_pkey on audit_log" in plan(), plan()
