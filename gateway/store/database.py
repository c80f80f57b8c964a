"""Engine creation and migrations for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, pool_size: int = 10) -> Engine:
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
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)


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
