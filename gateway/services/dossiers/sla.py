"""The 8-working-hour rule: new dossiers past their acknowledgment deadline are listed for operators,
counted in the metrics, and announced once in the one-stop feed."""

from __future__ import annotations

import logging
from typing import Any

from gateway.services.unit_of_work import Context
from gateway.store import dossiers, feed, server_clock

log = logging.getLogger(__name__)

ANNOUNCE_BATCH = 200


def breaches(ctx: Context, *, limit: int, after_id: int = 0) -> list[Any]:
    with ctx.engine.connect() as conn:
        return dossiers.sla_breaches(conn, now=server_clock.now(), limit=limit, after_id=after_id)


def count(ctx: Context) -> int:
    with ctx.engine.connect() as conn:
        return dossiers.count_sla_breaches(conn, now=server_clock.now())


def announce(ctx: Context) -> int:
    """Put a `dossier.sla_breached` item in the feed for each new breach, once (run by every worker)."""
    now = server_clock.now()
    with ctx.engine.begin() as conn:
        due = dossiers.unannounced_breaches(conn, now=now, limit=ANNOUNCE_BATCH)
        for row in due:
            feed.append(conn, type="dossier.sla_breached", code=row["code"], at=now,
                        data={"status": 1, "received_at": row["received_at"].isoformat(),
                              "acknowledge_by": row["ack_due_at"].isoformat(),
                              "overdue_minutes": int((now - row["ack_due_at"]).total_seconds() // 60)})
        dossiers.mark_announced(conn, [r["id"] for r in due], now=now)
    if due:
        log.warning("%d dossier(s) past their 8-working-hour acknowledgment deadline", len(due))
    return len(due)
