"""audit_log: index on (actor, at), so the console's adapter health does not read the whole chain

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 19:00:00
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor_at", table_name="audit_log")
