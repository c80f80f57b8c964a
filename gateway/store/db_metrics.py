"""The statements, commits and rollbacks a process sends to its database, counted by what caused them.

The origin is the work at hand (request_context.work), set by whoever starts it: the API per route
(`api POST /api/v1/one-stop/events`), a worker per queue it drains (`job national_portal`), its sweeper per
periodic task (`periodic audit sealing`). Exposed with the rest of the process's metrics (the API's /metrics,
a worker's --metrics-port); bench/load.py divides them by the status events of a run, so that "statements per
step request" and "the periodic scans' share" are counted, not guessed (issue 24).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from sqlalchemy import Engine, event

from gateway import request_context

from .database import COMMITS_ITSELF

STATEMENTS = Counter("gateway_db_statements", "Statements sent to the database, by what caused them", ["origin"])
COMMITS = Counter("gateway_db_commits", "Transactions committed, by what caused them", ["origin"])
ROLLBACKS = Counter("gateway_db_rollbacks", "Transactions rolled back (read-only ones too), by what caused them",
                    ["origin"])


def count(engine: Engine) -> None:
    """Count what this engine sends (an event listener each: a few microseconds a statement)."""
    statements: dict[str, Any] = {}  # origin -> its counter child: labels() takes a lock and a look-up
    commits: dict[str, Any] = {}
    rollbacks: dict[str, Any] = {}

    def child(counter: Counter, known: dict[str, Any]) -> Any:
        name = request_context.work.get()
        if (found := known.get(name)) is None:
            found = known[name] = counter.labels(name)
        return found

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(_conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: bool) -> None:
        child(STATEMENTS, statements).inc()
        if context.execution_options.get(COMMITS_ITSELF):
            child(COMMITS, commits).inc()

    @event.listens_for(engine, "commit")
    def _commit(_conn: Any) -> None:
        child(COMMITS, commits).inc()

    @event.listens_for(engine, "rollback")
    def _rollback(_conn: Any) -> None:
        child(ROLLBACKS, rollbacks).inc()
