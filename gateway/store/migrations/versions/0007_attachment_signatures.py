"""attachment signatures: the verdict on each PDF attachment of a filed dossier

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "attachment_signatures",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("dossier_id", Id, nullable=False),
        sa.Column("attachment_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("indication", sa.String(length=32), nullable=False),
        sa.Column("sub_indication", sa.String(length=64), nullable=True),
        sa.Column("summary_vi", sa.Text(), nullable=False),
        sa.Column("summary_en", sa.Text(), nullable=False),
        sa.Column("signature_count", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dossier_id"], ["dossiers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dossier_id", "attachment_id"),
    )


def downgrade() -> None:
    op.drop_table("attachment_signatures")
