"""analyse the jobs table often (PostgreSQL)

The claim query's plan depends on fresh statistics for jobs, whose mix of pending and finished rows
changes fast; the default thresholds (20 % of the table) leave it stale for long stretches.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 21:00:00
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE jobs SET (autovacuum_analyze_scale_factor = 0.01, autovacuum_analyze_threshold = 200,"
                   " autovacuum_vacuum_scale_factor = 0.02)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE jobs RESET (autovacuum_analyze_scale_factor, autovacuum_analyze_threshold,"
                   " autovacuum_vacuum_scale_factor)")
