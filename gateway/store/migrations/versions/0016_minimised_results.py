"""notification_attachments: sha256, size, dropped_at, archive_path (data minimisation drops result bodies)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification_attachments") as table:
        table.add_column(sa.Column("sha256", sa.String(64)))
        table.add_column(sa.Column("size", sa.BigInteger))
        table.add_column(sa.Column("dropped_at", sa.DateTime(timezone=True)))
        table.add_column(sa.Column("archive_path", sa.String(500)))


def downgrade() -> None:
    with op.batch_alter_table("notification_attachments") as table:
        for column in ("archive_path", "dropped_at", "size", "sha256"):
            table.drop_column(column)
