"""audit_log: a hash chain (seq, prev_hash, hash), sealed after commit

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UNSEALED = sa.text("seq IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_audit_log_seq", ["seq"])
    op.create_index("ix_audit_log_unsealed", "audit_log", ["id"], postgresql_where=UNSEALED, sqlite_where=UNSEALED)


def downgrade() -> None:
    op.drop_index("ix_audit_log_unsealed", "audit_log")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint("uq_audit_log_seq", type_="unique")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
