"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gateway.store.tables import metadata


def test_migrated_schema_matches_the_tables(stack):
    with stack.gateway.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
