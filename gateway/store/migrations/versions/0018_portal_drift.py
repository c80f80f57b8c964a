"""portal_checks, portal_findings, portal_reconcile: reconciliation with the national portal (drift)

Every dossier already filed is enrolled, due at once in filing order: the budget
(national_portal.reconcile.rate_per_second) paces the first round.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-10 10:00:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
IN_SCOPE = sa.text("next_check_at IS NOT NULL")
UNCHECKED = sa.text("next_check_at IS NOT NULL AND checked_at IS NULL")
UNREADABLE = sa.text("outcome = 'unreadable'")
OPEN = sa.text("state IN ('repairing', 'operator')")


def upgrade() -> None:
    op.create_table(
        "portal_checks",
        sa.Column("dossier_id", Id, autoincrement=False, nullable=False),
        sa.Column("dossier_code", sa.String(length=64), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["dossier_id"], ["dossiers.id"]),
        sa.PrimaryKeyConstraint("dossier_id"),
    )
    op.create_index("ix_portal_checks_due", "portal_checks", ["next_check_at"], unique=False,
                    postgresql_where=IN_SCOPE, sqlite_where=IN_SCOPE)
    op.create_index("ix_portal_checks_checked", "portal_checks", ["checked_at"], unique=False,
                    postgresql_where=IN_SCOPE, sqlite_where=IN_SCOPE)
    op.create_index("ix_portal_checks_unchecked", "portal_checks", ["enrolled_at"], unique=False,
                    postgresql_where=UNCHECKED, sqlite_where=UNCHECKED)
    op.create_index("ix_portal_checks_unreadable", "portal_checks", ["dossier_id"], unique=False,
                    postgresql_where=UNREADABLE, sqlite_where=UNREADABLE)
    op.create_table(
        "portal_findings",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("dossier_id", Id, nullable=False),
        sa.Column("dossier_code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("differences", sa.JSON(), nullable=False),
        sa.Column("portal", sa.JSON(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repairs", sa.Integer(), nullable=False),
        sa.Column("repair_jobs", sa.JSON(), nullable=True),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["dossier_id"], ["dossiers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_portal_findings_open", "portal_findings", ["dossier_id"], unique=True,
                    postgresql_where=OPEN, sqlite_where=OPEN)
    op.create_index("ix_portal_findings_dossier", "portal_findings", ["dossier_id"], unique=False)
    reconcile = op.create_table(
        "portal_reconcile",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    now = datetime.now(UTC)
    op.bulk_insert(reconcile, [{"id": 1, "tokens": 0.0,
                                "refilled_at": now.replace(tzinfo=None) if _sqlite() else now}])
    # Every dossier filed so far: due at once, the oldest first (the scan takes the earliest due).
    op.execute("INSERT INTO portal_checks (dossier_id, dossier_code, enrolled_at, next_check_at, checks) "
               "SELECT id, code, created_at, created_at, 0 FROM dossiers")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def downgrade() -> None:
    op.drop_table("portal_reconcile")
    op.drop_index("ix_portal_findings_dossier", table_name="portal_findings")
    op.drop_index("ux_portal_findings_open", table_name="portal_findings")
    op.drop_table("portal_findings")
    for name in ("ix_portal_checks_unreadable", "ix_portal_checks_unchecked", "ix_portal_checks_checked",
                 "ix_portal_checks_due"):
        op.drop_index(name, table_name="portal_checks")
    op.drop_table("portal_checks")
