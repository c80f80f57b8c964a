"""notifications.sending_since: the send intent of a batch of citizen messages

Written for a worker's batch before its first partner call, cleared with each message's outcome: a message still
carrying it when a worker takes it is in doubt (its worker stopped after the intent, before the outcome).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 21:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("sending_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("sending_since")
