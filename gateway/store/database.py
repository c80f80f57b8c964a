"""Engine creation and migrations for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text

from gateway.config import DatabaseSettings

from .json_columns import read_json

MIGRATIONS = Path(__file__).parent / "migrations"


def liveness_args(settings: DatabaseSettings) -> dict[str, Any]:
    """psycopg's connect arguments that bound how long either end of a connection trusts a vanished other end.

    The client side (libpq): TCP keepalives and TCP_USER_TIMEOUT, so a worker whose host was cut off gets an
    error instead of waiting on a half-open connection; the server side, asked for in the session's options:
    the same for its socket, idle_in_transaction_session_timeout, so a session that a vanished host left
    inside a transaction ends and lets go of its row locks (the sweeper waited behind them, issue 26), and
    lock_timeout, so nobody waits long behind such locks meanwhile."""
    idle = round(settings.keepalive_seconds)
    interval = max(1, round(settings.keepalive_seconds / 3))
    user_timeout_ms = round(settings.tcp_user_timeout_seconds * 1000)
    server = {"idle_in_transaction_session_timeout": round(settings.idle_in_transaction_timeout_seconds * 1000),
              "lock_timeout": round(settings.lock_timeout_seconds * 1000),
              "tcp_keepalives_idle": idle, "tcp_keepalives_interval": interval, "tcp_keepalives_count": 3,
              "tcp_user_timeout": user_timeout_ms}
    return {"keepalives": 1, "keepalives_idle": idle, "keepalives_interval": interval, "keepalives_count": 3,
            "tcp_user_timeout": user_timeout_ms, "connect_timeout": settings.connect_timeout_seconds,
            "options": " ".join(f"-c {name}={value}" for name, value in server.items())}


def make_engine(url: str, pool_size: int = 10, settings: DatabaseSettings | None = None) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # noqa: ANN001, ANN202
            # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            conn.isolation_level = None  # we issue BEGIN ourselves, see below

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001, ANN202
            # BEGIN IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No pre-ping: it costs a round trip per transaction. A connection broken by a database restart
    # fails once; SQLAlchemy then discards the whole pool and the API answers 503 (see api/errors.py).
    connect_args = liveness_args(settings or DatabaseSettings(url=url))
    # Timestamps read in the session's zone UTC, which psycopg maps to datetime.UTC: neither psycopg nor UtcDateTime
    # then converts each value from the server's own zone, a ZoneInfo (UtcDateTime's conversion alone was 2.8 % of
    # the worker's samples, docs/performance.md). No statement of the gateway depends on the session's zone.
    connect_args["options"] += " -c TimeZone=UTC"
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800,
                         json_deserializer=read_json, connect_args=connect_args)


# The execution option that marks a connection whose every statement is a transaction committed (one_statement):
# counted as a commit (db_metrics.py), as PostgreSQL counts it.
COMMITS_ITSELF = "gateway_commits_itself"


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only. On PostgreSQL without a transaction around them: under READ COMMITTED each
    statement has its own snapshot anyway, and the BEGIN and ROLLBACK psycopg would send around them are two round
    trips for nothing (about a third of a short read's CPU, docs/performance.md). Not for SELECT ... FOR UPDATE."""
    with engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else conn


@contextmanager
def one_statement(engine: Engine) -> Iterator[Connection]:
    """A connection for a write that is one statement, atomic on its own: on PostgreSQL without a transaction
    (one round trip, not three: BEGIN, the statement, COMMIT), elsewhere in one."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT", **{COMMITS_ITSELF: True})
    else:
        with engine.begin() as conn:
            yield conn


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    command.upgrade(alembic_config(url), "head")
    if url.startswith("postgresql"):
        # Fresh statistics: without them the planner walks the whole backlog to claim a batch.
        engine = make_engine(url, pool_size=1)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE jobs")
        engine.dispose()


def ping(engine: Engine) -> None:
    """Raise unless the database answers a query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
