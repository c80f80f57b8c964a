"""archive_packages (the sealed package of each finished dossier) and audit_anchors (TSA tokens over the chain head)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def UtcDateTime() -> sa.DateTime:  # noqa: N802 - reads like the column type of tables.py
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "archive_packages",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("dossier_id", Id, sa.ForeignKey("dossiers.id"), nullable=False, unique=True),
        sa.Column("dossier_code", sa.String(64), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("final_status", sa.Integer, nullable=False),
        sa.Column("final_at", UtcDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("path", sa.String(500)),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("dossier_bytes", sa.BigInteger),
        sa.Column("retention_years", sa.Integer),
        sa.Column("retain_until", UtcDateTime()),
        sa.Column("timestamp_at", UtcDateTime()),
        sa.Column("tsa_not_after", UtcDateTime()),
        sa.Column("timestamp_digest", sa.String(16)),
        sa.Column("timestamps", sa.Integer, nullable=False),
        sa.Column("sealed_at", UtcDateTime()),
        sa.Column("verified_at", UtcDateTime()),
        sa.Column("minimised_at", UtcDateTime()),
        sa.Column("flag", sa.String(300)),
        sa.Column("last_error", sa.Text),
        sa.Column("notes", sa.JSON),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_archive_packages_state", "archive_packages", ["state"])
    op.create_table(
        "audit_anchors",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("token", sa.LargeBinary, nullable=False),
        sa.Column("timestamp_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_anchors")
    op.drop_index("ix_archive_packages_state", table_name="archive_packages")
    op.drop_table("archive_packages")
