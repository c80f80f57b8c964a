"""Alembic environment: runs migrations against the URL the gateway is configured with."""

from alembic import context
from sqlalchemy import pool

from gateway.store.database import make_engine
from gateway.store.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
engine = make_engine(url) if url.startswith("sqlite") else make_engine(url, pool_size=1)

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
_ = pool
