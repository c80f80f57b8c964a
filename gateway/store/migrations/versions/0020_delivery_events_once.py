"""delivery_events: one row per tracking update (a delivery, a status, its time), however often it is received

The post sends a callback again when it got no answer (say, from an API host frozen behind the balancer, which
then took the first copy too), and polls see an update again: each copy was a row of the delivery's history,
which its archive package keeps for good. Copies already there are removed, the oldest kept (issue 26).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 22:30:00
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM delivery_events WHERE id NOT IN "
               "(SELECT min(id) FROM delivery_events GROUP BY delivery_id, status_code, at)")
    op.create_index("uq_delivery_events_update", "delivery_events", ["delivery_id", "status_code", "at"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("uq_delivery_events_update", table_name="delivery_events")
