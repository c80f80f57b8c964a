"""archive_packages.renew_after (a renewal that could not help waits) and one audit anchor per chain position

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("archive_packages") as batch:
        batch.add_column(sa.Column("renew_after", sa.DateTime(timezone=True)))
    # Two workers anchoring the same head at once: the second insert fails instead of doubling the anchor.
    op.create_index("ux_audit_anchors_seq", "audit_anchors", ["seq"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_audit_anchors_seq", table_name="audit_anchors")
    with op.batch_alter_table("archive_packages") as batch:
        batch.drop_column("renew_after")
