"""Alembic environment: runs migrations against the URL the gateway is configured with."""

from alembic import context
from sqlalchemy import pool

from gateway.config import DatabaseSettings
from gateway.store.database import make_engine
from gateway.store.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
# A migration waits for its locks as long as it takes (no lock_timeout): it runs once, by an operator.
engine = make_engine(url) if url.startswith("sqlite") else make_engine(
    url, pool_size=1, settings=DatabaseSettings(url=url, lock_timeout_seconds=0))

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
_ = pool
