"""queue_samples: each queue's backlog and dead letters over time, for the console's chart

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 11:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "queue_samples",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("backlog", sa.Integer(), nullable=False),
        sa.Column("dead", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_queue_samples_at", "queue_samples", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_queue_samples_at", table_name="queue_samples")
    op.drop_table("queue_samples")
