"""audit_log: index on (subject, id), so sealing a dossier's archive package does not read the whole log

Revision ID: 0017
Revises: 0014
Create Date: 2026-11-26 14:00:00
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_subject", "audit_log", ["subject", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_subject", table_name="audit_log")
