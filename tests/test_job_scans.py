"""What reads the jobs table often reads the backlog, not the history of finished jobs, which only grows:
the sweeper's look for jobs to publish, every second (it read every job ever made), and the job counts of a
dashboard that polls the backlog, `GET /ops/jobs?counts=unfinished` (a count of every state reads the whole
table: the bench's own polling cost PostgreSQL about 0.2 ms per status event at 200/s). docs/performance.md,
tenth round."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, select

from gateway.store import outbox

from .conftest import dossier_body, wait_for

OPS = {"Authorization": "Bearer dev-ops-key"}
FINISHED = 20_000

NOW = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
LOST = ("national_portal", "pending")
_JOBS = """INSERT INTO jobs (queue, kind, ordering_key, payload, state, attempts, max_attempts, next_attempt_at,
                             ready, published_at, created_at, updated_at)
           SELECT %(queue)s, 'k', 'K-' || g, '{}', %(state)s, 0, 5, %(due)s, %(ready)s, %(published)s, %(due)s,
                  %(due)s
           FROM generate_series(1, %(n)s) AS g"""


def _fill(engine: Engine) -> dict[tuple[str, str], int]:
    """A history of finished jobs and a backlog, analyzed. The sample of ANALYZE covers all 25,350 rows (it takes
    up to 30,000), so the statistics, and the plans they give, are the same at every run."""
    made = {("national_portal", "done"): FINISHED, ("notifications", "discarded"): 300,
            ("national_portal", "pending"): 40, ("notifications", "pending"): 5_000, ("notifications", "in_flight"): 7,
            ("national_portal", "dead"): 3}
    with engine.begin() as conn:
        for (queue, state), n in made.items():
            at = NOW if state in outbox.UNFINISHED else NOW - timedelta(hours=1)  # the history: older, ready once
            lost = (queue, state) == LOST  # ready jobs the broker never got (made ready by a finish, say)
            conn.exec_driver_sql(_JOBS, {"queue": queue, "state": state, "n": n, "ready": True,
                                         "due": at, "published": None if lost else at})
        conn.exec_driver_sql("ANALYZE jobs")
    return made


def _sent(engine: Engine, call: Callable[[Any], Any]) -> tuple[Any, list[tuple[str, Any]]]:
    """What `call` answered on a connection of its own (rolled back), and the statements it sent."""
    sent: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        with engine.connect() as conn:
            answer = call(conn)
            conn.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    return answer, sent


def _counted(engine: Engine, **options: Any) -> tuple[dict[tuple[str, str], int], str, Any]:
    """outbox.counts' answer, and the statement and parameters it sent."""
    rows, sent = _sent(engine, lambda conn: outbox.counts(conn, **options))
    return {(r["queue"], r["state"]): r["count"] for r in rows}, *sent[-1]


def _plan(engine: Engine, statement: str, parameters: Any) -> dict[str, Any]:
    with engine.connect() as conn:  # rolled back: a plan of an UPDATE or FOR UPDATE changes nothing
        return conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters).scalar_one()[0]["Plan"]


def _rows_read_from_jobs(node: dict[str, Any]) -> int:
    """Rows the plan's scans of the jobs table produced (with those its filters removed)."""
    own = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get("Actual Loops", 1) \
        if node.get("Relation Name") == "jobs" else 0
    return own + sum(_rows_read_from_jobs(child) for child in node.get("Plans", []))


def test_unfinished_counts_read_the_backlog_not_the_history(pg_engine):
    made = _fill(pg_engine)
    unfinished = {key: n for key, n in made.items() if key[1] in outbox.UNFINISHED}

    every, statement, parameters = _counted(pg_engine)
    assert every == made
    assert _rows_read_from_jobs(_plan(pg_engine, statement, parameters)) >= FINISHED  # the whole history

    counts, statement, parameters = _counted(pg_engine, unfinished_only=True)
    assert counts == unfinished
    plan = _plan(pg_engine, statement, parameters)
    assert _rows_read_from_jobs(plan) == sum(unfinished.values()), plan  # through ix_jobs_unfinished


def test_the_sweeper_looks_for_jobs_to_publish_in_the_backlog_alone(pg_engine):
    made = _fill(pg_engine)
    pending = made[LOST] + made[("notifications", "pending")]
    later = NOW.replace(minute=1)

    to_do, sent = _sent(pg_engine, lambda conn: conn.execute(select(outbox.sweep_pending(later, 600))).scalar_one())
    assert to_do is True
    assert _rows_read_from_jobs(_plan(pg_engine, *sent[-1])) <= pending + made[("notifications", "in_flight")]

    taken, sent = _sent(pg_engine, lambda conn: outbox.take_due_for_publish(conn, now=later, republish_after=600))
    assert len(taken) == made[LOST] and {queue for _, queue in taken} == {LOST[0]}
    looked = next((statement, parameters) for statement, parameters in sent if statement.startswith("SELECT"))
    assert _rows_read_from_jobs(_plan(pg_engine, *looked)) <= pending  # before: every job, by primary key


def test_the_ops_view_counts_the_backlog_alone_on_request(gw):
    gw.wait_jobs(gw.file(dossier_body())["code"])  # some jobs done

    def both() -> tuple[list[dict], list[dict]] | None:
        """The two answers, when no job changed state between them."""
        every = gw.client.get("/ops/jobs", headers=OPS).get_json()["counts"]
        unfinished = gw.client.get("/ops/jobs?counts=unfinished", headers=OPS).get_json()["counts"]
        again = gw.client.get("/ops/jobs", headers=OPS).get_json()["counts"]
        return (every, unfinished) if every == again else None

    every, unfinished = wait_for(both)
    assert any(r["state"] == "done" for r in every)
    assert unfinished == [r for r in every if r["state"] in outbox.UNFINISHED]

    refused = gw.client.get("/ops/jobs?counts=done", headers=OPS)
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "bad_query" and "unfinished" in refused.get_json()["error"]["message"]
