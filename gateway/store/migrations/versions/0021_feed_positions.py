"""feed_items.position: the cursor, numbered by the feed's readers in the order items became visible

Writers no longer take the feed's lock, held until their commit (every filing, booking and payment change queued
behind it); a reader numbers what has committed since the last reading, under that lock, before it reads. Items
already there keep their cursor: their position is their id.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feed_items") as batch:
        batch.add_column(sa.Column("position", sa.BigInteger(), nullable=True))
    op.execute("UPDATE feed_items SET position = id")
    op.create_index("ux_feed_items_position", "feed_items", ["position"], unique=True)
    op.create_index("ix_feed_items_unplaced", "feed_items", ["id"], postgresql_where=sa.text("position IS NULL"),
                    sqlite_where=sa.text("position IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_feed_items_unplaced", table_name="feed_items")
    op.drop_index("ux_feed_items_position", table_name="feed_items")
    with op.batch_alter_table("feed_items") as batch:
        batch.drop_column("position")
