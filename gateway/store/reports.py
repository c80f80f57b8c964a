"""What the quarterly report reads: one small row per dossier received in a period (no dossier bodies)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from gateway.domain.codes import Status

from .tables import deliveries, dossier_events, dossiers

RESULT = (int(Status.RESULT_READY), int(Status.RESULT_RETURNED))


def received_between(conn: Connection, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    result = (select(dossier_events.c.dossier_id, func.min(dossier_events.c.at).label("result_at"))
              .where(dossier_events.c.status.in_(RESULT)).group_by(dossier_events.c.dossier_id).subquery())
    query = (select(dossiers.c.procedure_code, dossiers.c.procedure_name, dossiers.c.level, dossiers.c.channel,
                    dossiers.c.status, dossiers.c.due_at, dossiers.c.fees_paid_online_at,
                    dossiers.c.data["fees"].label("fees"), result.c.result_at, deliveries.c.id.label("delivery"))
             .select_from(dossiers.outerjoin(result, result.c.dossier_id == dossiers.c.id)
                          .outerjoin(deliveries, deliveries.c.dossier_id == dossiers.c.id))
             .where(dossiers.c.received_at >= start, dossiers.c.received_at < end))
    for row in conn.execution_options(yield_per=1000).execute(query).mappings():
        yield {**row, "has_fees": bool(row["fees"]), "posted": row["delivery"] is not None}
