"""partial indexes on unfinished jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 20:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")
UNFINISHED = sa.text("state IN ('pending', 'in_flight', 'dead')")


def upgrade() -> None:
    op.create_index("ix_jobs_pending", "jobs", ["queue", "id"], postgresql_where=PENDING, sqlite_where=PENDING)
    op.create_index("ix_jobs_unfinished", "jobs", ["queue", "ordering_key", "id"],
                    postgresql_where=UNFINISHED, sqlite_where=UNFINISHED)


def downgrade() -> None:
    op.drop_index("ix_jobs_unfinished", "jobs")
    op.drop_index("ix_jobs_pending", "jobs")
