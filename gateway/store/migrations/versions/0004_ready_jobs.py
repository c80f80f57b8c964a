"""jobs.ready: the head of each ordering key, so claiming costs the same whatever the backlog

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 21:05:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

READY = sa.text("state = 'pending' AND ready")
PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("ready", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Existing jobs: the first unfinished one of each key is the head.
    op.execute("""
        UPDATE jobs SET ready = true
        WHERE state IN ('pending', 'in_flight', 'dead') AND NOT EXISTS (
            SELECT 1 FROM jobs AS prior
            WHERE prior.queue = jobs.queue AND prior.ordering_key = jobs.ordering_key AND prior.id < jobs.id
              AND prior.state IN ('pending', 'in_flight', 'dead'))
    """)
    op.drop_index("ix_jobs_pending", "jobs")
    op.create_index("ix_jobs_ready", "jobs", ["queue", "next_attempt_at", "id"], postgresql_where=READY,
                    sqlite_where=READY)


def downgrade() -> None:
    op.drop_index("ix_jobs_ready", "jobs")
    op.create_index("ix_jobs_pending", "jobs", ["queue", "id"], postgresql_where=PENDING, sqlite_where=PENDING)
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("ready")
